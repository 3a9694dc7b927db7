// RUN --mount, built by the kiln binary: what the step sees, and that nothing of the mounts reaches the
// image, the build context, the history or kiln's output. buildah cannot run these, so the expectations are
// BuildKit's, written by hand.

#include "common/sha256.hpp"
#include "tests/integration/run_build_fixture.hpp"

extern char** environ;

namespace kiln::test {
namespace {

using RunMountTest = RunBuildTest;

constexpr const char* k_secret = "kiln-it-secret-7f3a9c";

TEST_F(RunMountTest, CacheMountPersistsAcrossBuildsAndStaysOutOfTheLayer) {
    std::string cache = case_path("cache");
    const std::string dockerfile = R"DF(FROM base
ARG ROUND
RUN --mount=type=cache,target=/var/cache/app echo "$ROUND" >> /var/cache/app/log && cp /var/cache/app/log /seen
)DF";
    build_ok(dockerfile, {"--cache-dir", cache, "--build-arg", "ROUND=first"});
    EXPECT_EQ(content_of("seen"), "first\n");
    build_ok(dockerfile, {"--cache-dir", cache, "--build-arg", "ROUND=second"});
    EXPECT_EQ(content_of("seen"), "first\nsecond\n");
    EXPECT_FALSE(any_layer_has("var/cache"));
}

TEST_F(RunMountTest, CacheMountIsCreatedWithItsUidGidAndMode) {
    build_ok(
        "FROM base\n"
        "RUN --mount=type=cache,target=/c,uid=1234,gid=2345,mode=0750 stat -c '%u %g %a' /c > /cache-stat\n",
        {"--cache-dir", case_path("cache")});
    EXPECT_EQ(content_of("cache-stat"), "1234 2345 750\n");
    EXPECT_FALSE(any_layer_has("c"));
}

TEST_F(RunMountTest, BindFromTheContextIsReadOnlyAndLeavesTheContextAlone) {
    put("data/file", "from the context\n");
    build_ok(
        "FROM base\n"
        "RUN --mount=type=bind,source=data,target=/src cat /src/file > /copied && ! touch /src/new\n");
    EXPECT_EQ(content_of("copied"), "from the context\n");
    EXPECT_FALSE(path_exists(context_path("data/new")));
    EXPECT_FALSE(any_layer_has("src"));
}

TEST_F(RunMountTest, WritesToAReadWriteBindAreDiscarded) {
    put("data/file", "original\n");
    build_ok(
        "FROM base\n"
        "RUN --mount=type=bind,target=/src,rw echo changed > /src/data/file && echo added > /src/new && "
        "cat /src/data/file /src/new > /seen\n");
    EXPECT_EQ(content_of("seen"), "changed\nadded\n");
    EXPECT_EQ(read_file(context_path("data/file")).value_or(""), "original\n");
    EXPECT_FALSE(path_exists(context_path("new")));
}

TEST_F(RunMountTest, ContextBindHidesWhatTheIgnoreFileExcludes) {
    put("data/kept", "kept\n");
    put("data/private.key", "excluded\n");
    put(".dockerignore", "data/*.key\n");
    build_ok("FROM base\nRUN --mount=type=bind,target=/src ls /src/data > /listing\n");
    EXPECT_EQ(content_of("listing"), "kept\n");
}

TEST_F(RunMountTest, BindFromAStageSeesItsFilesAndCannotChangeThem) {
    // The final COPY --from shows that the rw bind's write never reached the stage's filesystem.
    build_ok(R"DF(FROM base AS tools
RUN mkdir /out && echo "built tool" > /out/tool
FROM base
RUN --mount=type=bind,from=tools,source=/out,target=/tools cat /tools/tool > /from-stage
RUN --mount=type=bind,from=tools,source=/out,target=/tools,rw echo overwritten > /tools/tool
COPY --from=tools /out/tool /after
)DF");
    EXPECT_EQ(content_of("from-stage"), "built tool\n");
    EXPECT_EQ(content_of("after"), "built tool\n");
    EXPECT_FALSE(any_layer_has("tools"));
}

TEST_F(RunMountTest, AStageUsedOnlyByARunMountIsBuilt) {
    build_ok(R"DF(FROM base AS tools
RUN echo "only mounted" > /tool
FROM base
RUN --mount=type=bind,from=tools,target=/tools cat /tools/tool > /used
)DF");
    EXPECT_EQ(content_of("used"), "only mounted\n");
}

TEST_F(RunMountTest, SecretIsReadableOnceAndLeavesNoTrace) {
    std::string secret_file = case_path("token.txt");
    ASSERT_TRUE(write_file_atomic(secret_file, k_secret, 0600));
    KilnRun run = build_ok(R"DF(FROM base
RUN --mount=type=secret,id=token stat -c '%a %u %g' /run/secrets/token > /secret-stat && sha256sum /run/secrets/token | cut -d' ' -f1 > /secret-hash
)DF",
                           {"--secret", "id=token,src=" + secret_file});
    EXPECT_EQ(content_of("secret-stat"), "400 0 0\n");
    EXPECT_EQ(content_of("secret-hash"), sha256_hex(k_secret) + "\n");
    EXPECT_FALSE(any_layer_has("run"));
    EXPECT_FALSE(contains(all_layer_bytes(), k_secret)) << "the secret reached a layer";
    EXPECT_FALSE(contains(config().dump(), k_secret)) << "the secret reached the config or the history";
    EXPECT_FALSE(contains(run.output, k_secret)) << "the secret reached kiln's output";
}

TEST_F(RunMountTest, SecretFromTheEnvironmentCanBeAVariableOfTheStep) {
    std::vector<std::string> environment;
    for (char** variable = environ; *variable; ++variable) environment.emplace_back(*variable);
    environment.push_back(str_cat("KILN_IT_TOKEN=", k_secret));
    KilnRun run = build_ok(R"DF(FROM base
RUN --mount=type=secret,id=token,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > /env-hash && test ! -e /run/secrets/token
)DF",
                           {"--secret", "id=token,env=KILN_IT_TOKEN"}, environment);
    EXPECT_EQ(content_of("env-hash"), sha256_hex(k_secret) + "\n");
    EXPECT_FALSE(contains(all_layer_bytes(), k_secret));
    EXPECT_FALSE(contains(config().dump(), k_secret));
    EXPECT_FALSE(contains(run.output, k_secret));
}

TEST_F(RunMountTest, MissingRequiredSecretIsAnErrorNamingIt) {
    KilnRun run = build("FROM base\nRUN --mount=type=secret,id=npm-token,required true\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
    EXPECT_TRUE(contains(run.output, "secret npm-token is required")) << run.output;
}

TEST_F(RunMountTest, MissingOptionalSecretIsNotMounted) {
    build_ok("FROM base\nRUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && touch /ran\n");
    EXPECT_TRUE(exists("ran"));
}

TEST_F(RunMountTest, TmpfsContentIsAbsentFromTheLayer) {
    build_ok(
        "FROM base\n"
        "RUN --mount=type=tmpfs,target=/scratch,size=1m echo temporary > /scratch/file && ls /scratch > "
        "/listing\n");
    EXPECT_EQ(content_of("listing"), "file\n");
    EXPECT_FALSE(any_layer_has("scratch"));
}

TEST_F(RunMountTest, SshMountIsRefusedClearly) {
    KilnRun run = build("FROM base\nRUN --mount=type=ssh true\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "type=ssh is not supported yet")) << run.output;
}

TEST_F(RunMountTest, MalformedMountNamesTheLineAndTheKey) {
    KilnRun run = build("FROM base\nRUN true\nRUN --mount=type=bind,colour=red true\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:3")) << run.output;
    EXPECT_TRUE(contains(run.output, "unexpected key 'colour'")) << run.output;
}

}  // namespace
}  // namespace kiln::test
