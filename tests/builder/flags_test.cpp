#include "builder/cli/flags.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "builder/cli/flag_table.hpp"
#include "common/strings.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

TEST(BuildFlags, AcceptBothValueForms) {
    auto options = parse_build_flags({"--context", "/ctx", "--dockerfile=Dockerfile.prod", "-d", "reg/app:1",
                                      "--destination=reg/app:2"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->context_dir, "/ctx");
    EXPECT_EQ(options->dockerfile, "Dockerfile.prod");
    EXPECT_EQ(options->destinations, (std::vector<std::string>{"reg/app:1", "reg/app:2"}));
}

TEST(BuildFlags, ShortFlagWithAttachedValue) {
    auto options = parse_build_flags({"-c/ctx", "--no-push"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->context_dir, "/ctx");
}

TEST(BuildFlags, TheContextIsKeptAsGivenForTheBuildToResolve) {
    auto options = parse_build_flags({"--context=dir:///workspace", "--no-push"});
    ASSERT_TRUE(options);
    EXPECT_EQ(options->context_dir, "dir:///workspace");
}

TEST(BuildFlags, BooleanFlagsTakeOptionalValues) {
    auto options = parse_build_flags({"--no-push=true", "--insecure", "--insecure-pull=false"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(options->no_push);
    EXPECT_TRUE(options->push.plain_http);
    EXPECT_FALSE(options->pull.plain_http);
    EXPECT_FALSE(parse_build_flags({"--no-push=maybe"}));
}

TEST(BuildFlags, BuildArgsKeepOrderAndBareNamesReadTheEnvironment) {
    ::setenv("KILN_TEST_ARG", "from-env", 1);
    auto options = parse_build_flags({"--no-push", "--build-arg", "A=1", "--build-arg=KILN_TEST_ARG", "--build-arg", "B="});
    ASSERT_TRUE(options) << options.error().message();
    ASSERT_EQ(options->build_args.size(), 3u);
    EXPECT_EQ(options->build_args[0], (std::pair<std::string, std::string>{"A", "1"}));
    EXPECT_EQ(options->build_args[1], (std::pair<std::string, std::string>{"KILN_TEST_ARG", "from-env"}));
    EXPECT_EQ(options->build_args[2], (std::pair<std::string, std::string>{"B", ""}));
    ::unsetenv("KILN_TEST_ARG");
    EXPECT_FALSE(parse_build_flags({"--no-push", "--build-arg", "KILN_TEST_ARG"}));
}

TEST(BuildFlags, InsecureRegistryAppliesToPullAndPush) {
    auto options = parse_build_flags({"--no-push", "--insecure-registry", "127.0.0.1:5000"});
    ASSERT_TRUE(options);
    EXPECT_EQ(options->pull.plain_http_registries, std::vector<std::string>{"127.0.0.1:5000"});
    EXPECT_EQ(options->push.plain_http_registries, std::vector<std::string>{"127.0.0.1:5000"});
}

TEST(BuildFlags, DestinationIsRequiredUnlessNoPush) {
    auto options = parse_build_flags({"--context=."});
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message().find("--destination"), std::string::npos);
}

TEST(BuildFlags, UnknownFlagIsAnErrorNamingIt) {
    auto options = parse_build_flags({"--no-push", "--frobnicate=1"});
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message().find("--frobnicate"), std::string::npos);
}

TEST(BuildFlags, KanikoFlagsThatWouldChangeTheResultAreRefused) {
    auto options = parse_build_flags({"--no-push", "--bucket=contexts"});
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message().find("--bucket"), std::string::npos);
}

TEST(BuildFlags, GitOptionsAccumulateAndUnknownOnesAreRefused) {
    auto options = parse_build_flags({"--no-push", "--git=branch=main", "--git", "recurse-submodules=true"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->git.branch, "main");
    EXPECT_TRUE(options->git.recurse_submodules);
    auto unknown = parse_build_flags({"--no-push", "--git=depth=1"});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("depth"), std::string::npos) << unknown.error().message();
}

TEST(BuildFlags, RegistryFlagsAreParsed) {
    auto options = parse_build_flags(
        {"--no-push", "--registry-mirror=mirror.local", "--registry-mirror", "127.0.0.1:5000/hub",
         "--registry-map=ghcr.io=127.0.0.1:5001", "--skip-default-registry-fallback",
         "--registry-certificate=reg.io=/ca.pem", "--registry-client-cert=reg.io=/c.pem,/k.pem",
         "--skip-push-permission-check", "--transfer-jobs=8", "--push-retry=0", "--image-download-retry=5",
         "--registry-stall-timeout=5"});
    ASSERT_TRUE(options) << options.error().message();
    const RegistrySettings& settings = options->registries;
    EXPECT_EQ(settings.mirrors, (std::vector<std::string>{"mirror.local", "127.0.0.1:5000/hub"}));
    EXPECT_EQ(settings.maps, std::vector<std::string>{"ghcr.io=127.0.0.1:5001"});
    EXPECT_FALSE(settings.default_fallback);
    ASSERT_EQ(settings.certificates.size(), 1u);
    EXPECT_EQ(settings.certificates[0], (std::pair<std::string, std::string>{"reg.io", "/ca.pem"}));
    ASSERT_EQ(settings.client_certificates.size(), 1u);
    EXPECT_EQ(settings.client_certificates[0].second.first, "/c.pem");
    EXPECT_EQ(settings.client_certificates[0].second.second, "/k.pem");
    EXPECT_FALSE(settings.check_push_permission);
    EXPECT_EQ(settings.transfer_jobs, 8u);
    EXPECT_EQ(options->push.retries, 0);
    EXPECT_EQ(options->pull.retries, 5);
    EXPECT_EQ(settings.stall_timeout_seconds, 5);
}

TEST(BuildFlags, RegistryFlagsWithMalformedValuesAreRefused) {
    for (std::string flag : {"--registry-client-cert=reg.io=/only-one.pem", "--registry-certificate=reg.io",
                             "--transfer-jobs=0", "--push-retry=-1"}) {
        auto options = parse_build_flags({"--no-push", flag});
        ASSERT_FALSE(options) << flag;
        EXPECT_NE(options.error().message().find(flag.substr(0, flag.find('='))), std::string::npos)
            << options.error().message();
    }
}

TEST(BuildFlags, KanikoPerformanceFlagsAreAcceptedWithTheirValues) {
    auto options = parse_build_flags({"--no-push", "--cache=true", "--cache-dir", "/cache", "--snapshot-mode=redo",
                                      "--cleanup", "--tar-path=out.tar"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->tar_path, "out.tar");
}

TEST(BuildFlags, EveryFlagWithHelpIsInExactlyOneHelpGroup) {
    std::map<std::string, int> listed;
    for (const FlagGroup& group : build_flag_groups())
        for (std::string_view name : group.flags) {
            ++listed[std::string(name)];
            EXPECT_TRUE(std::any_of(flag_specs().begin(), flag_specs().end(),
                                    [&](const FlagSpec& spec) { return spec.name == name; }))
                << name << " is in a group but is no flag";
        }
    for (const FlagSpec& spec : flag_specs())
        if (!spec.help.empty()) {
            EXPECT_EQ(listed[std::string(spec.name)], 1) << spec.name;
        }
}

TEST(BuildFlags, HelpNamesTheKanikoFlagsItIgnoresOrRefusesWithTheReason) {
    std::string usage = build_usage();
    for (const IgnoredFlag& flag : ignored_flags()) {
        EXPECT_NE(usage.find(str_cat("--", flag.name)), std::string::npos) << flag.name;
        EXPECT_NE(usage.find(flag.why), std::string::npos) << flag.name;
    }
    for (const RefusedFlag& flag : refused_flags()) EXPECT_NE(usage.find(flag.why), std::string::npos) << flag.name;
    EXPECT_NE(usage.find("kiln always skips the stages the target does not need"), std::string::npos);
    EXPECT_LT(usage.find("\nContext and sources:\n"), usage.find("\nLogging and output:\n"));
}

TEST(BuildFlags, CleanupIsKanikosFlagWithAMeaning) {
    auto options = parse_build_flags({"--no-push", "--cleanup"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(options->cleanup);
}

TEST(BuildFlags, ForceBuildMetadataIsKanikosFlagWithAMeaning) {
    auto options = parse_build_flags({"--no-push", "--force-build-metadata"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(options->force_build_metadata);
    EXPECT_FALSE(parse_build_flags({"--no-push"})->force_build_metadata);
}

// A Kaniko flag with nothing to do in kiln is accepted, its value too, with a warning that says why.
TEST(BuildFlags, KanikoFlagsWithNothingToDoAreAcceptedWithTheReason) {
    test::LogCapture log;
    auto options = parse_build_flags({"--no-push", "--image-fs-extract-retry", "3", "--skip-unused-stages"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(log.contains("--image-fs-extract-retry is accepted but has no effect: kiln extracts only layers it "
                             "has downloaded and verified"))
        << log.text();
    EXPECT_TRUE(log.contains("--skip-unused-stages is accepted but has no effect")) << log.text();
}

// The sandbox and overlay mounts take absolute paths only: relative directories are made absolute at once.
TEST(BuildFlags, RelativeWorkAndCacheDirectoriesAreMadeAbsolute) {
    auto options = parse_build_flags({"--no-push", "--work-dir", "work", "--cache-dir=cache"});
    ASSERT_TRUE(options) << options.error().message();
    std::string cwd = std::filesystem::current_path().string();
    EXPECT_EQ(options->work_dir_parent, cwd + "/work");
    EXPECT_EQ(options->cache_dir, cwd + "/cache");
    EXPECT_EQ(parse_build_flags({"--no-push", "--work-dir=/abs"})->work_dir_parent, "/abs");
}

TEST(BuildFlags, AFlagsErrorNamesTheFlagOnce) {
    auto options = parse_build_flags({"--no-push", "--log-format=xml"});
    ASSERT_FALSE(options);
    EXPECT_EQ(options.error().message(), "--log-format: expected text, color or json, got \"xml\"");
    options = parse_build_flags({"--no-push", "--compression-level", "x"});
    ASSERT_FALSE(options);
    EXPECT_TRUE(options.error().message().starts_with("--compression-level: ")) << options.error().message();
}

TEST(BuildFlags, TheSummaryAndTheTraceCannotShareAFile) {
    EXPECT_FALSE(parse_build_flags({"--no-push", "--summary-file=out.json", "--trace-file=out.json"}));
    EXPECT_TRUE(parse_build_flags({"--no-push", "--summary-file=s.json", "--trace-file=t.json"}));
}

TEST(BuildFlags, CacheFlagsKeepKanikosMeaning) {
    auto defaults = parse_build_flags({"--no-push"});
    ASSERT_TRUE(defaults);
    EXPECT_FALSE(defaults->cache.enabled);
    EXPECT_EQ(defaults->cache.ttl, std::chrono::hours(336));
    auto options = parse_build_flags({"--no-push", "--cache", "--cache-ttl=90m", "--cache-run-layers=false",
                                      "--cache-copy-layers=false"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(options->cache.enabled);
    EXPECT_EQ(options->cache.ttl, std::chrono::minutes(90));
    EXPECT_FALSE(options->cache.run_layers);
    EXPECT_FALSE(options->cache.copy_layers);
    for (const char* bad : {"--cache-ttl=soon", "--cache-ttl=0", "--cache=maybe"}) {
        auto refused = parse_build_flags({"--no-push", bad});
        ASSERT_FALSE(refused) << bad;
        EXPECT_NE(refused.error().message().find(std::string(bad).substr(2, std::string(bad).find('=') - 2)),
                  std::string::npos)
            << refused.error().message();
    }
}

TEST(BuildFlags, MissingValueIsAnError) {
    auto options = parse_build_flags({"--no-push", "--target"});
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message().find("--target needs a value"), std::string::npos);
}

TEST(BuildFlags, PositionalArgumentsAreRefused) { EXPECT_FALSE(parse_build_flags({"--no-push", "Dockerfile"})); }

TEST(BuildFlags, PlatformAndFormatAreValidated) {
    auto options = parse_build_flags({"--no-push", "--custom-platform=linux/arm64", "--format=docker"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->custom_platform->architecture, "arm64");
    EXPECT_EQ(options->manifest_format, ManifestFormat::docker);
    EXPECT_FALSE(parse_build_flags({"--no-push", "--custom-platform=linux"}));
    EXPECT_FALSE(parse_build_flags({"--no-push", "--format=rpm"}));
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

EnvironmentLookup environment_of(std::map<std::string, std::string> variables) {
    return [variables = std::move(variables)](std::string_view name) -> std::optional<std::string> {
        auto found = variables.find(std::string(name));
        return found == variables.end() ? std::nullopt : std::optional<std::string>(found->second);
    };
}

TEST(KanikoEnvironment, MirrorsAndMapsAddToTheFlags) {
    auto options = parse_build_flags({"--no-push", "--registry-mirror", "flag.example"},
                                     environment_of({{"KANIKO_REGISTRY_MIRROR", "one.example, two.example:5000/hub"},
                                                     {"KANIKO_REGISTRY_MAP", "a.example=b.example;c.example=d.example"}}));
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->registries.mirrors,
              (std::vector<std::string>{"flag.example", "one.example", "two.example:5000/hub"}));
    EXPECT_EQ(options->registries.maps, (std::vector<std::string>{"a.example=b.example;c.example=d.example"}));
}

TEST(KanikoEnvironment, NoPushFromTheEnvironmentNeedsNoDestination) {
    auto options = parse_build_flags({"--context=."}, environment_of({{"KANIKO_NO_PUSH", "true"}}));
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_TRUE(options->no_push);
    auto refused = parse_build_flags({"--no-push"}, environment_of({{"KANIKO_NO_PUSH", "false"}}));
    ASSERT_FALSE(refused) << "KANIKO_NO_PUSH=false overrides --no-push, as in Kaniko";
    auto invalid = parse_build_flags({"--no-push"}, environment_of({{"KANIKO_NO_PUSH", "perhaps"}}));
    ASSERT_FALSE(invalid);
    EXPECT_NE(invalid.error().message().find("KANIKO_NO_PUSH"), std::string::npos) << invalid.error().message();
}

TEST(KanikoEnvironment, KanikoDirIsTheWorkDirectoryUnlessAFlagNamesOne) {
    auto from_env = parse_build_flags({"--no-push"}, environment_of({{"KANIKO_DIR", "/kaniko-work"}}));
    ASSERT_TRUE(from_env);
    EXPECT_EQ(from_env->work_dir_parent, "/kaniko-work");
    auto from_flag =
        parse_build_flags({"--no-push", "--kaniko-dir", "/flag-work"}, environment_of({{"KANIKO_DIR", "/kaniko-work"}}));
    ASSERT_TRUE(from_flag);
    EXPECT_EQ(from_flag->work_dir_parent, "/flag-work");
}

}  // namespace
}  // namespace kiln
