// --memory-budget's sizes, and the automatic budget read from a cgroup tree and a meminfo file made here.

#include "builder/memory_budget.hpp"

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

TEST(MemoryBudgetTest, SizesAreBytesOrKubernetesQuantities) {
    EXPECT_EQ(*parse_memory_budget("auto"), std::nullopt);
    EXPECT_EQ(*parse_memory_budget("0"), std::optional<std::uint64_t>(0));
    EXPECT_EQ(*parse_memory_budget("1234"), std::optional<std::uint64_t>(1234));
    EXPECT_EQ(*parse_memory_budget("512M"), std::optional<std::uint64_t>(512'000'000));
    EXPECT_EQ(*parse_memory_budget("2Gi"), std::optional<std::uint64_t>(2ull << 30));
    EXPECT_EQ(*parse_memory_budget("64Ki"), std::optional<std::uint64_t>(64 << 10));
    EXPECT_EQ(*parse_memory_budget("1Ti"), std::optional<std::uint64_t>(1ull << 40));
    for (const char* bad : {"", "M", "-1", "1.5G", "12 Mi", "3X", "3Pi", "99999999999999999999Gi", "autox"}) {
        auto parsed = parse_memory_budget(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_NE(parsed.error().message().find("--memory-budget"), std::string::npos);
    }
}

class AutomaticBudgetTest : public ::testing::Test {
protected:
    void SetUp() override { m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-memory-budget-test-")); }
    void put(const std::string& path, const std::string& text) {
        ASSERT_TRUE(make_directories(parent_path(m_dir.path() + "/" + path)));
        ASSERT_TRUE(write_file_atomic(m_dir.path() + "/" + path, text));
    }
    std::uint64_t budget() {
        return automatic_memory_budget(m_dir.path() + "/cgroup", m_dir.path() + "/self-cgroup",
                                       m_dir.path() + "/meminfo");
    }
    TempDir m_dir;
};

TEST_F(AutomaticBudgetTest, HalfOfWhatThePodsCgroupStillAllows) {
    put("self-cgroup", "0::/kubepods/pod1/build\n");
    put("cgroup/kubepods/pod1/memory.max", "1073741824\n");
    put("cgroup/kubepods/pod1/memory.current", "73741824\n");
    put("cgroup/kubepods/pod1/build/memory.max", "max\n");
    put("cgroup/kubepods/pod1/build/memory.current", "70000000\n");
    put("meminfo", "MemTotal: 99999999 kB\nMemAvailable: 50000000 kB\n");
    EXPECT_EQ(budget(), 500'000'000u);
}

TEST_F(AutomaticBudgetTest, HalfOfMemAvailableOutsideALimitingCgroup) {
    put("self-cgroup", "0::/\n");
    put("cgroup/memory.max", "max\n");
    put("meminfo", "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n");
    EXPECT_EQ(budget(), 2'000'000ull * 1024);
}

TEST_F(AutomaticBudgetTest, ACgroupAtItsLimitLeavesNoBudget) {
    put("self-cgroup", "0::/full\n");
    put("cgroup/full/memory.max", "1000\n");
    put("cgroup/full/memory.current", "2000\n");
    put("meminfo", "MemAvailable: 4000000 kB\n");
    EXPECT_EQ(budget(), 0u);
}

// Nodes that still run cgroup v1 (and this machine): the memory controller's hierarchy, not the unified one.
TEST_F(AutomaticBudgetTest, HalfOfWhatTheCgroupV1MemoryControllerStillAllows) {
    put("self-cgroup", "5:devices:/kubepods/pod2\n4:cpu,memory:/kubepods/pod2/build\n0::/\n");
    put("cgroup/memory/kubepods/pod2/memory.limit_in_bytes", "536870912\n");
    put("cgroup/memory/kubepods/pod2/memory.usage_in_bytes", "36870912\n");
    put("cgroup/memory/kubepods/pod2/build/memory.limit_in_bytes", "9223372036854771712\n");
    put("cgroup/memory/kubepods/pod2/build/memory.usage_in_bytes", "30000000\n");
    put("cgroup/memory.max", "1000\n");  // the unified hierarchy, which has no memory controller here
    put("cgroup/memory.current", "2000\n");
    put("meminfo", "MemAvailable: 50000000 kB\n");
    EXPECT_EQ(budget(), 250'000'000u);
}

TEST_F(AutomaticBudgetTest, NothingReadableIsNoBudget) { EXPECT_EQ(budget(), 0u); }

}  // namespace
}  // namespace kiln
