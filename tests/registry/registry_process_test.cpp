// The RegistryProcess fixture itself: the integration tests of this and other libraries rely on it cleaning up.
#include "tests/support/registry_process.hpp"

#include <signal.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

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

TEST(RegistryProcessIntegrationTest, UnusableTlsCertificateFailsTheStartWithTheRegistrysLog) {
    if (auto reason = test::RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
    auto started = std::chrono::steady_clock::now();
    auto registry = test::RegistryProcess::start(
        {.tls_certificate = "/nonexistent/server.pem", .tls_key = "/nonexistent/server.key"});
    ASSERT_FALSE(registry);
    // The registry exits at once; the start must notice that rather than wait for the startup timeout.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    EXPECT_NE(registry.error().message().find("/nonexistent/server.pem"), std::string::npos)
        << registry.error().message();
}

TEST(RegistryProcessIntegrationTest, ClientCaWithoutServerCertificateIsRefused) {
    auto registry = test::RegistryProcess::start({.tls_client_ca = "/some/ca.pem"});
    ASSERT_FALSE(registry);
    EXPECT_NE(registry.error().message().find("tls_client_ca"), std::string::npos) << registry.error().message();
}

}  // namespace
}  // namespace kiln
