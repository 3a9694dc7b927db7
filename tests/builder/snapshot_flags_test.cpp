// Kaniko's snapshot flags and kiln's --snapshotter and --sandbox, as parsed into BuildOptions.

#include <gtest/gtest.h>

#include "builder/cli/flags.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

TEST(SnapshotFlags, DefaultsAreMetadataAutoAndIgnoreVarRun) {
    auto options = parse_build_flags({"--no-push"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->snapshot_mode, SnapshotMode::metadata);
    EXPECT_EQ(options->snapshotter, SnapshotterKind::automatic);
    EXPECT_TRUE(options->ignore_var_run);
    EXPECT_TRUE(options->ignore_paths.empty());
}

TEST(SnapshotFlags, SnapshotModeTakesKanikosValues) {
    for (auto [text, mode] : {std::pair{"full", SnapshotMode::full}, std::pair{"redo", SnapshotMode::redo},
                              std::pair{"time", SnapshotMode::time}}) {
        auto options = parse_build_flags({"--no-push", std::string("--snapshot-mode=") + text});
        ASSERT_TRUE(options) << options.error().message();
        EXPECT_EQ(options->snapshot_mode, mode) << text;
    }
}

TEST(SnapshotFlags, DeprecatedSnapshotModeSpellingIsAccepted) {
    auto options = parse_build_flags({"--no-push", "--snapshotMode", "time"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->snapshot_mode, SnapshotMode::time);
}

TEST(SnapshotFlags, UnknownSnapshotModeIsRefused) {
    auto options = parse_build_flags({"--no-push", "--snapshot-mode=quick"});
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message().find("--snapshot-mode"), std::string::npos)
        << options.error().message();
}

TEST(SnapshotFlags, SnapshotterNamesParseAndUnknownIsRefused) {
    auto overlay = parse_build_flags({"--no-push", "--snapshotter=overlay"});
    ASSERT_TRUE(overlay) << overlay.error().message();
    EXPECT_EQ(overlay->snapshotter, SnapshotterKind::overlay);
    auto walk = parse_build_flags({"--no-push", "--snapshotter", "walk"});
    ASSERT_TRUE(walk) << walk.error().message();
    EXPECT_EQ(walk->snapshotter, SnapshotterKind::walk);
    EXPECT_FALSE(parse_build_flags({"--no-push", "--snapshotter=btrfs"}));
}

TEST(SnapshotFlags, IgnorePathIsRepeatable) {
    auto options = parse_build_flags({"--no-push", "--ignore-path=/opt/cache", "--ignore-path", "/srv"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_EQ(options->ignore_paths, (std::vector<std::string>{"/opt/cache", "/srv"}));
}

TEST(SnapshotFlags, IgnorePathOfTheRootIsRefused) {
    EXPECT_FALSE(parse_build_flags({"--no-push", "--ignore-path=/"}));
}

TEST(SnapshotFlags, IgnoreVarRunCanBeTurnedOff) {
    auto options = parse_build_flags({"--no-push", "--ignore-var-run=false"});
    ASSERT_TRUE(options) << options.error().message();
    EXPECT_FALSE(options->ignore_var_run);
    auto deprecated = parse_build_flags({"--no-push", "--whitelist-var-run=false"});
    ASSERT_TRUE(deprecated) << deprecated.error().message();
    EXPECT_FALSE(deprecated->ignore_var_run);
}

TEST(SnapshotFlags, IgnoreVarRunRefusesAValueThatIsNotABoolean) {
    EXPECT_FALSE(parse_build_flags({"--no-push", "--ignore-var-run=maybe"}));
}

TEST(SandboxFlag, ModesParseDefaultIsAutoAndUnknownIsRefused) {
    auto defaults = parse_build_flags({"--no-push"});
    ASSERT_TRUE(defaults) << defaults.error().message();
    EXPECT_EQ(defaults->sandbox, SandboxMode::automatic);
    for (auto [name, mode] : {std::pair{"auto", SandboxMode::automatic}, std::pair{"userns", SandboxMode::userns},
                              std::pair{"rootns", SandboxMode::rootns}, std::pair{"chroot", SandboxMode::chroot}}) {
        auto options = parse_build_flags({"--no-push", str_cat("--sandbox=", name)});
        ASSERT_TRUE(options) << options.error().message();
        EXPECT_EQ(options->sandbox, mode) << name;
        EXPECT_STREQ(sandbox_mode_name(mode), name);
    }
    auto unknown = parse_build_flags({"--no-push", "--sandbox=none"});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("expected auto, userns, rootns or chroot"), std::string::npos)
        << unknown.error().message();
}

}  // namespace
}  // namespace kiln
