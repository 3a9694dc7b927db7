#include "builder/host.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

HostEnvironment with(std::map<std::string, std::string, std::less<>> variables) {
    return HostEnvironment{.variables = std::move(variables)};
}

TEST(HostEnvironment, TheCacheDirectoryFollowsXdgThenHomeThenTheTemporaryDirectory) {
    EXPECT_EQ(with({{"XDG_CACHE_HOME", "/xdg/cache"}, {"HOME", "/home/a"}}).default_cache_dir(), "/xdg/cache/kiln");
    EXPECT_EQ(with({{"XDG_CACHE_HOME", "relative"}, {"HOME", "/home/a"}}).default_cache_dir(), "/home/a/.cache/kiln");
    std::string fallback = with({{"TMPDIR", "/scratch"}}).default_cache_dir();
    EXPECT_TRUE(fallback.starts_with("/scratch/kiln-cache-")) << fallback;
}

TEST(HostEnvironment, TheTemporaryDirectoryIsTmpdirElseVarTmp) {
    EXPECT_EQ(with({{"TMPDIR", "/scratch"}}).temp_parent(), "/scratch");
    EXPECT_EQ(with({{"TMPDIR", ""}}).temp_parent(), "/var/tmp");
    EXPECT_EQ(with({}).temp_parent(), "/var/tmp");
}

TEST(HostEnvironment, SourceDateEpochMustBeANumber) {
    EXPECT_EQ(with({{"SOURCE_DATE_EPOCH", "1700000000"}}).source_date_epoch(), 1700000000);
    EXPECT_FALSE(with({{"SOURCE_DATE_EPOCH", "yesterday"}}).source_date_epoch());
    EXPECT_FALSE(with({}).source_date_epoch());
}

TEST(HostEnvironment, CredentialsSeeDockerConfigHomeAndPath) {
    CredentialEnvironment credentials =
        with({{"DOCKER_CONFIG", "/cfg"}, {"HOME", "/home/a"}, {"PATH", "/bin"}}).credentials();
    EXPECT_EQ(credentials.docker_config, "/cfg");
    EXPECT_EQ(credentials.home, "/home/a");
    EXPECT_EQ(credentials.path, "/bin");
}

}  // namespace
}  // namespace kiln
