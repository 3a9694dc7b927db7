#include "common/log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "common/parallel.hpp"

namespace kiln {
namespace {

class LogLabelTest : public ::testing::Test {
protected:
    void SetUp() override {
        set_log_sink([this](LogLevel, std::string_view message) {
            std::lock_guard lock(m_mutex);
            m_lines.emplace_back(message);
        });
    }
    void TearDown() override { set_log_sink(nullptr); }
    std::vector<std::string> lines() {
        std::lock_guard lock(m_mutex);
        std::vector<std::string> sorted = m_lines;
        std::sort(sorted.begin(), sorted.end());
        return sorted;
    }
    std::mutex m_mutex;
    std::vector<std::string> m_lines;
};

TEST_F(LogLabelTest, LinesGetTheLabelOnceAndLoseItWhenTheLabelEnds) {
    {
        LogLabel label("builder");
        log_info("  layer sha256:abc: 3 path(s)");
        log_info("[builder 2/5] RUN make");
        {
            LogLabel inner("");
            log_info("unlabelled inside");
        }
        log_warn("still labelled");
    }
    log_info("after");
    EXPECT_EQ(lines(), (std::vector<std::string>{"[builder 2/5] RUN make", "[builder]   layer sha256:abc: 3 path(s)",
                                                 "[builder] still labelled", "after", "unlabelled inside"}));
}

TEST_F(LogLabelTest, JobsRunBoundedCarryTheLabelOfWhoStartedThem) {
    {
        LogLabel label("tools");
        ASSERT_TRUE(run_bounded(8, 4, [](size_t job) -> Status {
            log_info("job ", job);
            return {};
        }));
    }
    std::vector<std::string> found = lines();
    ASSERT_EQ(found.size(), 8u);
    for (const std::string& line : found) EXPECT_TRUE(line.starts_with("[tools] job ")) << line;
}

}  // namespace
}  // namespace kiln
