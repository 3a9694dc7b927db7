// The RegistryProcess fixture itself: the integration tests of this and other libraries rely on it cleaning up.
#include "tests/support/registry_process.hpp"

#include <signal.h>

#include <gtest/gtest.h>

#include <cerrno>

#include "common/files.hpp"

namespace kiln {
namespace {

TEST(RegistryProcessIntegrationTest, DestructionStopsTheProcessAndRemovesItsStorage) {
    if (auto reason = test::RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
    auto registry = test::RegistryProcess::start();
    ASSERT_TRUE(registry) << registry.error().message();
    pid_t pid = (*registry)->pid();
    std::string storage = (*registry)->storage_dir();
    ASSERT_TRUE(path_exists(storage));
    EXPECT_NE((*registry)->log().find((*registry)->host_port()), std::string::npos) << (*registry)->log();
    registry->reset();
    errno = 0;
    EXPECT_EQ(::kill(pid, 0), -1);
    EXPECT_EQ(errno, ESRCH);
    EXPECT_FALSE(path_exists(storage));
}

}  // namespace
}  // namespace kiln
