// Typed instructions: each instruction's fields, flags, and the errors that name file and line.

#include <gtest/gtest.h>

#include "dockerfile-parser/instructions.hpp"

namespace kiln::dockerfile {
namespace {

// Parses a one-instruction Dockerfile (after an implicit context of other lines, if any) into its instruction.
Result<Instruction> instruction_of(std::string_view text) {
    Result<Ast> ast = parse_ast(text, "Dockerfile");
    if (!ast) return std::unexpected(ast.error());
    return parse_instruction(ast->children.back(), "Dockerfile");
}

template <class T>
T typed(std::string_view text) {
    Result<Instruction> instruction = instruction_of(text);
    EXPECT_TRUE(instruction) << text << ": " << (instruction ? "" : instruction.error().message());
    if (!instruction || !std::holds_alternative<T>(*instruction)) {
        ADD_FAILURE() << text << ": not the expected instruction type";
        return T{};
    }
    return std::get<T>(*instruction);
}

std::string error_of(std::string_view text) {
    Result<Instruction> instruction = instruction_of(text);
    EXPECT_FALSE(instruction) << text << " parsed";
    return instruction ? "" : instruction.error().message();
}

TEST(Instructions, FromKeepsImageStageNameAndPlatform) {
    auto from = typed<FromInstruction>("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build");
    EXPECT_EQ(from.image, "golang:1.22");
    EXPECT_EQ(from.stage_name, "Build");
    EXPECT_EQ(from.platform, "$BUILDPLATFORM");
    EXPECT_EQ(from.location.start_line, 1);
    EXPECT_EQ(from.original, "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build");
}

TEST(Instructions, FromRejectsBadStageNamesAndArgumentCounts) {
    EXPECT_NE(error_of("FROM a AS 1x").find("invalid name for build stage"), std::string::npos);
    EXPECT_NE(error_of("FROM a b").find("FROM requires either one or three arguments"), std::string::npos);
    EXPECT_NE(error_of("FROM").find("FROM requires either one or three arguments"), std::string::npos);
}

TEST(Instructions, ArgSplitsNamesAndRawDefaults) {
    auto arg = typed<ArgInstruction>("ARG A B=\"1 2\" C=");
    ASSERT_EQ(arg.args.size(), 3u);
    EXPECT_EQ(arg.args[0].name, "A");
    EXPECT_FALSE(arg.args[0].default_value);
    EXPECT_EQ(arg.args[1].name, "B");
    EXPECT_EQ(arg.args[1].default_value, "\"1 2\"");
    EXPECT_EQ(arg.args[2].default_value, "");
}

TEST(Instructions, ArgWithoutANameIsAnErrorNamingTheLine) {
    std::string error = error_of("FROM scratch\nARG =oops");
    EXPECT_NE(error.find("Dockerfile:2"), std::string::npos) << error;
    EXPECT_NE(error.find("ARG names can not be blank"), std::string::npos) << error;
}

TEST(Instructions, EnvKeepsRawValuesInOrder) {
    auto env = typed<EnvInstruction>("ENV A=1 B=\"two words\" C=$A\\ x");
    ASSERT_EQ(env.pairs.size(), 3u);
    EXPECT_EQ(env.pairs[1].key, "B");
    EXPECT_EQ(env.pairs[1].value, "\"two words\"");
    EXPECT_EQ(env.pairs[2].value, "$A\\ x");
    EXPECT_FALSE(env.legacy_form);
}

TEST(Instructions, EnvLegacyFormTakesTheRestAsValue) {
    auto env = typed<EnvInstruction>("ENV PATH /usr/bin:$PATH  more");
    ASSERT_EQ(env.pairs.size(), 1u);
    EXPECT_EQ(env.pairs[0].key, "PATH");
    EXPECT_EQ(env.pairs[0].value, "/usr/bin:$PATH  more");
    EXPECT_TRUE(env.legacy_form);
}

TEST(Instructions, EnvErrors) {
    EXPECT_NE(error_of("ENV A").find("ENV must have two arguments"), std::string::npos);
    EXPECT_NE(error_of("ENV A=1 B").find("can't find = in \"B\""), std::string::npos);
    EXPECT_NE(error_of("ENV").find("ENV requires at least one argument"), std::string::npos);
    EXPECT_NE(error_of("ENV =x").find("ENV names can not be blank"), std::string::npos);
}

TEST(Instructions, LabelPairs) {
    auto label = typed<LabelInstruction>("LABEL org.opencontainers.image.title=\"kiln\" version=1");
    ASSERT_EQ(label.pairs.size(), 2u);
    EXPECT_EQ(label.pairs[0].key, "org.opencontainers.image.title");
    EXPECT_EQ(label.pairs[0].value, "\"kiln\"");
}

TEST(Instructions, RunShellFormWithFlags) {
    auto run = typed<RunInstruction>(
        "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none "
        "--security=insecure make && make install");
    EXPECT_TRUE(run.shell_form);
    EXPECT_EQ(run.args, (std::vector<std::string>{"make && make install"}));
    EXPECT_EQ(run.mounts, (std::vector<std::string>{"type=cache,target=/root/.cache", "type=secret,id=x"}));
    EXPECT_EQ(run.network, "none");
    EXPECT_EQ(run.security, "insecure");
}

TEST(Instructions, RunExecFormAndHeredoc) {
    auto exec = typed<RunInstruction>("RUN [\"/bin/sh\", \"-c\", \"echo $HOME\"]");
    EXPECT_FALSE(exec.shell_form);
    EXPECT_EQ(exec.args, (std::vector<std::string>{"/bin/sh", "-c", "echo $HOME"}));
    auto heredoc = typed<RunInstruction>("RUN <<-EOF bash\n\techo $X\nEOF\n");
    ASSERT_EQ(heredoc.heredocs.size(), 1u);
    EXPECT_EQ(heredoc.heredocs[0].name, "EOF");
    EXPECT_EQ(heredoc.heredocs[0].content, "echo $X\n");
    EXPECT_TRUE(heredoc.heredocs[0].expand);
    EXPECT_EQ(heredoc.location.end_line, 3);
}

TEST(Instructions, RunFlagErrors) {
    EXPECT_NE(error_of("RUN --foo=1 x").find("unknown flag: --foo"), std::string::npos);
    EXPECT_NE(error_of("RUN --network=a --network=b x").find("duplicate flag specified: --network"),
              std::string::npos);
    EXPECT_NE(error_of("RUN --network x").find("missing a value on flag: --network"), std::string::npos);
    EXPECT_NE(error_of("RUN").find("RUN requires at least one argument"), std::string::npos);
}

TEST(Instructions, CopyFieldsAndRepeatableExclude) {
    auto copy = typed<CopyInstruction>(
        "COPY --from=build --chown=1000:1000 --chmod=0755 --link --parents --exclude=*.md --exclude=tmp "
        "a b /dst/");
    EXPECT_EQ(copy.sources, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(copy.destination, "/dst/");
    EXPECT_EQ(copy.from, "build");
    EXPECT_EQ(copy.chown, "1000:1000");
    EXPECT_EQ(copy.chmod, "0755");
    EXPECT_TRUE(copy.link);
    EXPECT_TRUE(copy.parents);
    EXPECT_EQ(copy.excludes, (std::vector<std::string>{"*.md", "tmp"}));
}

TEST(Instructions, CopyBooleanFlagValues) {
    EXPECT_FALSE(typed<CopyInstruction>("COPY --link=false a b").link);
    EXPECT_TRUE(typed<CopyInstruction>("COPY --link=TRUE a b").link);
    EXPECT_NE(error_of("COPY --link=maybe a b").find("expecting boolean value for flag --link"), std::string::npos);
}

TEST(Instructions, CopyHeredocSourcesAreInline) {
    auto copy = typed<CopyInstruction>("COPY <<A <<-'B' x /dst/\nhello $X\nA\n\tbye\nB\n");
    EXPECT_EQ(copy.sources, (std::vector<std::string>{"x"}));
    ASSERT_EQ(copy.inline_sources.size(), 2u);
    EXPECT_EQ(copy.inline_sources[0].name, "A");
    EXPECT_EQ(copy.inline_sources[0].content, "hello $X\n");
    EXPECT_TRUE(copy.inline_sources[0].expand);
    EXPECT_EQ(copy.inline_sources[1].content, "bye\n");
    EXPECT_FALSE(copy.inline_sources[1].expand);
}

TEST(Instructions, CopyErrors) {
    EXPECT_NE(error_of("COPY onlyone").find("COPY requires at least two arguments"), std::string::npos);
    EXPECT_NE(error_of("COPY a <<EOF\nx\nEOF\n").find("cannot accept a heredoc as a destination"),
              std::string::npos);
    EXPECT_NE(error_of("COPY --checksum=sha256:x a b").find("unknown flag: --checksum"), std::string::npos);
}

TEST(Instructions, AddFields) {
    auto add = typed<AddInstruction>(
        "ADD --checksum=sha256:abc --keep-git-dir --chown=u --exclude=x https://example.com/a.tgz /opt/");
    EXPECT_EQ(add.sources, (std::vector<std::string>{"https://example.com/a.tgz"}));
    EXPECT_EQ(add.destination, "/opt/");
    EXPECT_EQ(add.checksum, "sha256:abc");
    EXPECT_TRUE(add.keep_git_dir);
    EXPECT_EQ(add.chown, "u");
    EXPECT_EQ(add.excludes, (std::vector<std::string>{"x"}));
    EXPECT_NE(error_of("ADD --from=x a b").find("unknown flag: --from"), std::string::npos);
}

TEST(Instructions, JsonFormCopyWithSpaces) {
    auto copy = typed<CopyInstruction>("COPY [\"a file\", \"/dst dir/\"]");
    EXPECT_EQ(copy.sources, (std::vector<std::string>{"a file"}));
    EXPECT_EQ(copy.destination, "/dst dir/");
}

TEST(Instructions, CmdEntrypointShell) {
    auto cmd = typed<CmdInstruction>("CMD [\"nginx\", \"-g\", \"daemon off;\"]");
    EXPECT_FALSE(cmd.shell_form);
    EXPECT_EQ(cmd.args.size(), 3u);
    auto empty = typed<CmdInstruction>("CMD []");
    EXPECT_FALSE(empty.shell_form);
    EXPECT_TRUE(empty.args.empty());
    auto entrypoint = typed<EntrypointInstruction>("ENTRYPOINT exec  app --flag");
    EXPECT_TRUE(entrypoint.shell_form);
    EXPECT_EQ(entrypoint.args, (std::vector<std::string>{"exec  app --flag"}));
    auto shell = typed<ShellInstruction>("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]");
    EXPECT_EQ(shell.args.size(), 4u);
    EXPECT_NE(error_of("SHELL /bin/bash -c").find("SHELL requires the arguments to be in JSON form"),
              std::string::npos);
    EXPECT_NE(error_of("SHELL []").find("SHELL requires at least one argument"), std::string::npos);
}

TEST(Instructions, SingleArgumentInstructions) {
    EXPECT_EQ(typed<WorkdirInstruction>("WORKDIR /app/$NAME").path, "/app/$NAME");
    EXPECT_EQ(typed<UserInstruction>("USER 1000:1000").user, "1000:1000");
    EXPECT_EQ(typed<StopsignalInstruction>("STOPSIGNAL SIGTERM").signal, "SIGTERM");
    EXPECT_EQ(typed<MaintainerInstruction>("MAINTAINER Jane <jane@example.com>").name, "Jane <jane@example.com>");
    EXPECT_NE(error_of("WORKDIR").find("WORKDIR requires exactly one argument"), std::string::npos);
    EXPECT_NE(error_of("USER").find("USER requires exactly one argument"), std::string::npos);
}

TEST(Instructions, ExposeAndVolumeLists) {
    EXPECT_EQ(typed<ExposeInstruction>("EXPOSE 80 443/tcp $PORT").ports,
              (std::vector<std::string>{"80", "443/tcp", "$PORT"}));
    EXPECT_EQ(typed<VolumeInstruction>("VOLUME [\"/data\", \"/logs\"]").paths,
              (std::vector<std::string>{"/data", "/logs"}));
    EXPECT_EQ(typed<VolumeInstruction>("VOLUME /a /b").paths, (std::vector<std::string>{"/a", "/b"}));
    EXPECT_NE(error_of("VOLUME [\" \"]").find("VOLUME specified can not be an empty string"), std::string::npos);
    EXPECT_NE(error_of("EXPOSE").find("EXPOSE requires at least one argument"), std::string::npos);
}

TEST(Instructions, Healthcheck) {
    auto check = typed<HealthcheckInstruction>(
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=2s --retries=3 "
        "CMD curl -f http://localhost/");
    EXPECT_FALSE(check.none);
    EXPECT_EQ(check.interval, "5s");
    EXPECT_EQ(check.timeout, "3s");
    EXPECT_EQ(check.start_period, "1s");
    EXPECT_EQ(check.start_interval, "2s");
    EXPECT_EQ(check.retries, "3");
    EXPECT_TRUE(check.shell_form);
    EXPECT_EQ(check.args, (std::vector<std::string>{"curl -f http://localhost/"}));
    auto exec = typed<HealthcheckInstruction>("HEALTHCHECK cmd [\"/bin/check\"]");
    EXPECT_FALSE(exec.shell_form);
    EXPECT_TRUE(typed<HealthcheckInstruction>("HEALTHCHECK NONE").none);
    EXPECT_NE(error_of("HEALTHCHECK NONE x").find("HEALTHCHECK NONE takes no arguments"), std::string::npos);
    EXPECT_NE(error_of("HEALTHCHECK CONNECT x").find("Unknown type \"CONNECT\""), std::string::npos);
    EXPECT_NE(error_of("HEALTHCHECK CMD").find("Missing command after HEALTHCHECK CMD"), std::string::npos);
    EXPECT_NE(error_of("HEALTHCHECK --bogus=1 CMD x").find("unknown flag: --bogus"), std::string::npos);
}

TEST(Instructions, OnbuildKeepsTriggerText) {
    EXPECT_EQ(typed<OnbuildInstruction>("ONBUILD   RUN make  install").trigger, "RUN make  install");
    EXPECT_EQ(typed<OnbuildInstruction>("ONBUILD RUN <<EOF\necho\nEOF\n").trigger, "RUN <<EOF\necho\nEOF");
    EXPECT_NE(error_of("ONBUILD ONBUILD RUN x").find("Chaining ONBUILD"), std::string::npos);
    EXPECT_NE(error_of("ONBUILD FROM x").find("FROM isn't allowed as an ONBUILD trigger"), std::string::npos);
    EXPECT_NE(error_of("ONBUILD BOGUS x").find("unknown instruction: BOGUS"), std::string::npos);
    EXPECT_NE(error_of("ONBUILD").find("ONBUILD requires at least one argument"), std::string::npos);
}

TEST(Instructions, UnknownInstructionNamesFileLineAndText) {
    EXPECT_EQ(error_of("FROM a\n\nFOO bar\n"), "Dockerfile:3: unknown instruction: FOO (in: \"FOO bar\")");
}

TEST(Instructions, UnknownFlagNamesFileLineAndText) {
    EXPECT_EQ(error_of("FROM a\nCOPY --foo a b\n"), "Dockerfile:2: unknown flag: --foo (in: \"COPY --foo a b\")");
}

TEST(Instructions, KeywordsAreCaseInsensitive) {
    EXPECT_EQ(typed<WorkdirInstruction>("workdir /x").path, "/x");
    EXPECT_EQ(instruction_name(*instruction_of("rUn x")), "RUN");
}

TEST(Instructions, LocationCoversContinuationLines) {
    auto run = typed<RunInstruction>("FROM a\nRUN a \\\n  b \\\n  c\n");
    EXPECT_EQ(run.location.file, "Dockerfile");
    EXPECT_EQ(run.location.start_line, 2);
    EXPECT_EQ(run.location.end_line, 4);
    EXPECT_EQ(instruction_base(Instruction(run)).original, "RUN a   b   c");
}

}  // namespace
}  // namespace kiln::dockerfile
