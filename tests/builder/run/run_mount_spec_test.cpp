// RUN --mount values against BuildKit's parser: every key and its spellings, the defaults, and the errors.

#include "builder/run/run_mount_spec.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

// Expands $NAME from a fixed table, as the stage's ARG/ENV scope would.
Result<std::string> expand(std::string_view word) {
    std::string text(word);
    for (auto [name, value] : {std::pair{"$DIR", "/cache/dir"}, std::pair{"$ID", "go-build"}}) {
        size_t at = text.find(name);
        if (at != std::string::npos) text.replace(at, std::string_view(name).size(), value);
    }
    return text;
}

RunMountRequest parse(std::string_view value) {
    auto parsed = parse_run_mount(value, expand);
    EXPECT_TRUE(parsed) << value << ": " << parsed.error().message();
    return parsed ? *parsed : RunMountRequest{};
}

std::string error_of(std::string_view value) {
    auto parsed = parse_run_mount(value, expand);
    EXPECT_FALSE(parsed) << value << " was accepted";
    return parsed ? "" : parsed.error().message();
}

TEST(RunMountSpec, TypeDefaultsToAReadOnlyBind) {
    RunMountRequest mount = parse("target=/src");
    EXPECT_EQ(mount.type, RunMountType::bind);
    EXPECT_EQ(mount.target, "/src");
    EXPECT_TRUE(mount.read_only);
    EXPECT_TRUE(mount.from.empty());
    EXPECT_TRUE(mount.source.empty());
}

TEST(RunMountSpec, CacheAndTmpfsAreWritableByDefaultAndSecretIsReadOnly) {
    EXPECT_FALSE(parse("type=cache,target=/c").read_only);
    EXPECT_FALSE(parse("type=tmpfs,target=/t").read_only);
    EXPECT_TRUE(parse("type=secret,id=s").read_only);
}

TEST(RunMountSpec, KeysAndTypesAreCaseInsensitive) {
    RunMountRequest mount = parse("Type=CACHE,TARGET=/c,ID=x,Sharing=LOCKED");
    EXPECT_EQ(mount.type, RunMountType::cache);
    EXPECT_EQ(mount.target, "/c");
    EXPECT_EQ(mount.id, "x");
    EXPECT_EQ(mount.sharing, CacheSharing::locked);
}

TEST(RunMountSpec, EverySpellingOfTargetAndSourceIsAccepted) {
    for (const char* key : {"target", "dst", "destination"})
        EXPECT_EQ(parse(std::string(key) + "=/t").target, "/t") << key;
    for (const char* key : {"source", "src"})
        EXPECT_EQ(parse(std::string(key) + "=sub/dir").source, "sub/dir") << key;
    EXPECT_EQ(parse("from=builder,target=/t").from, "builder");
}

TEST(RunMountSpec, ReadOnlyAndReadWriteFlagsWithAndWithoutValues) {
    EXPECT_FALSE(parse("target=/t,rw").read_only);
    EXPECT_FALSE(parse("target=/t,readwrite").read_only);
    EXPECT_FALSE(parse("target=/t,rw=true").read_only);
    EXPECT_TRUE(parse("target=/t,rw=false").read_only);
    EXPECT_TRUE(parse("type=cache,target=/t,ro").read_only);
    EXPECT_TRUE(parse("type=cache,target=/t,readonly=1").read_only);
    EXPECT_FALSE(parse("target=/t,readonly=F").read_only);
    EXPECT_EQ(error_of("target=/t,rw=maybe"), "invalid value for rw: maybe");
}

TEST(RunMountSpec, CacheSettings) {
    RunMountRequest mount = parse("type=cache,target=/c,id=$ID,sharing=private,mode=0700,uid=1000,gid=1001");
    EXPECT_EQ(mount.id, "go-build");
    EXPECT_EQ(mount.sharing, CacheSharing::unshared);
    EXPECT_EQ(mount.mode, 0700u);
    EXPECT_EQ(mount.uid, 1000u);
    EXPECT_EQ(mount.gid, 1001u);
    EXPECT_EQ(parse("type=cache,target=/c,sharing=shared").sharing, CacheSharing::shared);
    EXPECT_FALSE(parse("type=cache,target=/c").sharing);
    EXPECT_FALSE(parse("type=cache,target=/c").mode);
}

TEST(RunMountSpec, TmpfsSizeTakesBinaryUnits) {
    EXPECT_EQ(parse("type=tmpfs,target=/t,size=1024").size, 1024u);
    EXPECT_EQ(parse("type=tmpfs,target=/t,size=64m").size, 64u << 20);
    EXPECT_EQ(parse("type=tmpfs,target=/t,size=1.5GiB").size, 3u << 29);
    EXPECT_EQ(parse("type=tmpfs,target=/t,size=2 kb").size, 2048u);
    EXPECT_EQ(error_of("type=tmpfs,target=/t,size=lots"), "invalid value for size: lots");
    EXPECT_EQ(error_of("type=tmpfs,target=/t,size=1.2.3m"), "invalid value for size: 1.2.3m");
}

TEST(RunMountSpec, SecretSettings) {
    RunMountRequest mount = parse("type=secret,id=token,target=/t,required,mode=0440,uid=1,gid=2,env=TOKEN");
    EXPECT_EQ(mount.type, RunMountType::secret);
    EXPECT_EQ(mount.id, "token");
    EXPECT_TRUE(mount.required);
    EXPECT_EQ(mount.mode, 0440u);
    EXPECT_EQ(mount.env, "TOKEN");
    EXPECT_FALSE(parse("type=secret,id=token,required=false").required);
    EXPECT_FALSE(parse("type=secret,id=token").env);
}

TEST(RunMountSpec, ValuesAreExpandedButFromIsNot) {
    EXPECT_EQ(parse("type=cache,target=$DIR").target, "/cache/dir");
    EXPECT_EQ(error_of("from=$STAGE,target=/t"),
              "'from' doesn't support variable expansion, define alias stage instead");
}

TEST(RunMountSpec, QuotedCsvFieldsMayHoldCommas) {
    EXPECT_EQ(parse("type=bind,\"source=a,b\",target=/t").source, "a,b");
    EXPECT_EQ(parse("\"target=/with \"\"quote\"\"\"").target, "/with \"quote\"");
    EXPECT_NE(error_of("target=/t,src=a\"b").find("bare \""), std::string::npos);
}

TEST(RunMountSpec, UnknownKeysAndTypesAreRefused) {
    EXPECT_EQ(error_of("type=bind,foo=bar"), "unexpected key 'foo' in 'foo=bar'");
    EXPECT_NE(error_of("type=volume,target=/t").find("unsupported mount type \"volume\""), std::string::npos);
    EXPECT_NE(error_of("type=cache,target=/t,sharing=open").find("unsupported sharing value \"open\""),
              std::string::npos);
    EXPECT_EQ(error_of("target=/t,noexec"), "invalid field 'noexec' must be a key=value pair");
}

TEST(RunMountSpec, KeysOfOtherTypesAreRefused) {
    EXPECT_EQ(error_of("target=/t,mode=0755"), "mode not allowed for \"bind\" type mounts");
    EXPECT_EQ(error_of("type=tmpfs,target=/t,uid=1"), "uid not allowed for \"tmpfs\" type mounts");
    EXPECT_EQ(error_of("type=tmpfs,target=/t,gid=1"), "gid not allowed for \"tmpfs\" type mounts");
    EXPECT_EQ(error_of("type=cache,target=/t,size=1m"), "unexpected key 'size' for mount type 'cache'");
    EXPECT_EQ(error_of("target=/t,required"), "unexpected key 'required' for mount type 'bind'");
    EXPECT_EQ(error_of("type=bind,target=/t,sharing=locked"), "invalid cache sharing set for bind mount");
    // As in BuildKit, a key is judged by the type given before it.
    EXPECT_EQ(error_of("size=1m,type=tmpfs,target=/t"), "unexpected key 'size' for mount type 'bind'");
}

TEST(RunMountSpec, NumbersAreChecked) {
    EXPECT_EQ(error_of("type=cache,target=/t,mode=0789"), "invalid value 0789 for mode");
    EXPECT_EQ(error_of("type=cache,target=/t,uid=-1"), "invalid value -1 for uid");
    EXPECT_EQ(error_of("type=cache,target=/t,gid=4294967296"), "invalid value 4294967296 for gid");
}

TEST(RunMountSpec, SecretCombinationsAreChecked) {
    EXPECT_EQ(error_of("type=secret,from=x,id=s"), "secret mount should not have a from");
    EXPECT_EQ(error_of("type=secret"), "invalid secret mount. one of source, target required");
    EXPECT_EQ(error_of("type=secret,source=a,id=b"), "both source and id can't be set");
}

TEST(RunMountSpec, SourcesForThePlannerAreTheFromOfBindAndCacheMounts) {
    dockerfile::RunInstruction run;
    run.mounts = {"type=bind,from=builder,target=/b", "type=cache,FROM=seed,target=/c", "type=secret,id=x",
                  "type=tmpfs,from=ignored,target=/t", "target=/ctx"};
    EXPECT_EQ(run_mount_sources(run), (std::vector<std::string>{"builder", "seed"}));
}

}  // namespace
}  // namespace kiln
