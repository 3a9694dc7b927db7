#pragma once
// The fixture of the extraction tests: a rootfs beside an "outside" directory holding host files that no
// layer may touch or leak, both in one temporary base directory.

#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {

using test::TestTar;

constexpr std::int64_t k_mtime = 1'600'000'000;

class ExtractTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_base = std::move(*TempDir::create(default_temp_parent(), "kiln-extract-"));
        m_root_path = m_base.path() + "/root";
        m_outside = m_base.path() + "/outside";
        std::filesystem::create_directory(m_root_path);
        std::filesystem::create_directory(m_outside);
        test::write_text(m_outside + "/secret", "HOST SECRET");
        test::write_text(m_outside + "/victim", "must survive");
        m_outside_before = test::describe_tree(m_outside);
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_root_path)));
    }

    Result<ExtractStats> apply(const TestTar& tar, OwnershipFailure ownership = OwnershipFailure::error) {
        StringReader reader(tar.bytes());
        return apply_layer(*m_root, reader,
                           {.layer_name = "sha256:test-layer", .ownership_failure = ownership});
    }

    void apply_ok(const TestTar& tar) {
        auto stats = apply(tar);
        ASSERT_TRUE(stats) << stats.error().message();
    }

    // A refused layer: the error names the layer and the entry.
    void expect_refused(const TestTar& tar, const std::string& entry) {
        auto stats = apply(tar);
        ASSERT_FALSE(stats) << "layer with entry \"" << entry << "\" was accepted";
        EXPECT_NE(stats.error().message().find("sha256:test-layer"), std::string::npos)
            << stats.error().message();
        EXPECT_NE(stats.error().message().find(entry), std::string::npos) << stats.error().message();
    }

    // Nothing outside the rootfs changed, and no host bytes were copied or linked into it.
    void expect_host_untouched() {
        EXPECT_EQ(test::describe_tree(m_outside), m_outside_before);
        std::vector<std::string> base;
        for (const auto& entry : std::filesystem::directory_iterator(m_base.path()))
            base.push_back(entry.path().filename().string());
        std::sort(base.begin(), base.end());
        EXPECT_EQ(base, (std::vector<std::string>{"outside", "root"}));
        for (const auto& entry : std::filesystem::recursive_directory_iterator(m_root_path)) {
            if (!std::filesystem::is_regular_file(entry.symlink_status())) continue;
            EXPECT_EQ(test::read_text(entry.path()).find("HOST SECRET"), std::string::npos) << entry.path();
        }
        struct stat st;
        ASSERT_EQ(::stat((m_outside + "/secret").c_str(), &st), 0);
        EXPECT_EQ(st.st_nlink, 1u) << "a hardlink to a host file was made";
    }

    struct stat lstat_of(const std::string& path) {
        struct stat st {};
        EXPECT_EQ(::lstat((m_root_path + "/" + path).c_str(), &st), 0) << path;
        return st;
    }
    bool exists(const std::string& path) { return test::exists_nofollow(m_root_path + "/" + path); }
    std::string content(const std::string& path) { return test::read_text(m_root_path + "/" + path); }

    TempDir m_base;
    std::string m_root_path;
    std::string m_outside;
    std::vector<std::string> m_outside_before;
    std::unique_ptr<RootFs> m_root;
};

inline std::int64_t other_uid() {
    return test::running_as_root() ? 1234 : ::getuid();
}
inline std::int64_t other_gid() {
    return test::running_as_root() ? 5678 : ::getgid();
}

}  // namespace kiln
