#pragma once
// One registry and one kiln-made busybox base, shared by the tests of a suite (starting them per test would
// dominate the suite's time).

#include <gtest/gtest.h>

#include "tests/integration/harness.hpp"

namespace kiln::test {

class RegistryBuildTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if ((s_skip_reason = missing_tools())) return;
        auto work = TempDir::create(default_temp_parent(), "kiln-it-");
        ASSERT_TRUE(work) << work.error().message();
        s_work = new TempDir(std::move(*work));
        auto registry = RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        s_registry = registry->release();
        auto base = push_busybox_base(*s_registry, s_work->path());
        ASSERT_TRUE(base) << base.error().message();
        s_base = new std::string(*base);
    }
    static void TearDownTestSuite() {
        delete s_base;
        delete s_registry;
        delete s_work;
        s_base = nullptr;
        s_registry = nullptr;
        s_work = nullptr;
    }
    void SetUp() override {
        if (s_skip_reason) GTEST_SKIP() << *s_skip_reason;
        ASSERT_NE(s_base, nullptr) << "the shared busybox base could not be built";
        auto dir = TempDir::create(s_work->path(), "case-");
        ASSERT_TRUE(dir);
        m_dir = std::move(*dir);
    }

    const std::string& base() const { return *s_base; }
    const RegistryProcess& registry() const { return *s_registry; }
    std::string reference(const std::string& repository_and_tag) const {
        return s_registry->host_port() + "/" + repository_and_tag;
    }
    // A context directory with a Dockerfile holding `text` (and FROM lines may use $BASE).
    std::string context_with(const std::string& dockerfile_text) {
        std::string context = m_dir.path() + "/context";
        EXPECT_TRUE(make_directories(context));
        EXPECT_TRUE(write_file_atomic(context + "/Dockerfile", dockerfile_text));
        return context;
    }

    TempDir m_dir;
    static inline std::optional<std::string> s_skip_reason;
    static inline TempDir* s_work = nullptr;
    static inline RegistryProcess* s_registry = nullptr;
    static inline std::string* s_base = nullptr;
};

}  // namespace kiln::test
