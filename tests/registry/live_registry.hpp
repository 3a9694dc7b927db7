#pragma once
// A fixture with a real registry process (Debian's docker-registry) on 127.0.0.1 per test, and a client that
// speaks plain HTTP to it and retries within 0.7 s. Skips where the registry cannot run.

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "registry/client.hpp"
#include "tests/support/registry_process.hpp"

namespace kiln::test {

class LiveRegistryTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto reason = RegistryProcess::unavailable_reason()) GTEST_SKIP() << *reason;
        auto registry = RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        m_options.plain_http.add(m_registry->host_port());
        m_options.retry.window = std::chrono::milliseconds(700);
        m_client = std::make_unique<RegistryClient>(m_options);
    }

    void TearDown() override {
        if (HasFailure() && m_registry) {
            std::string log = m_registry->log();
            std::cerr << "--- registry log (tail) ---\n" << log.substr(log.size() > 8000 ? log.size() - 8000 : 0);
        }
    }

    Reference reference(std::string_view path) const {
        return Reference::parse(m_registry->host_port() + "/" + std::string(path)).value();
    }

    std::unique_ptr<RegistryProcess> m_registry;
    RegistryClientOptions m_options;  // what m_client was made with
    std::unique_ptr<RegistryClient> m_client;
};

}  // namespace kiln::test
