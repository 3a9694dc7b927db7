#include "builder/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "common/strings.hpp"

namespace kiln {
namespace {

// A DAG where job i depends on the jobs listed; every job records when it started and finished.
struct Recorder {
    std::mutex mutex;
    std::vector<size_t> started;
    std::vector<size_t> finished;
    std::atomic<int> running{0};
    std::atomic<int> most_running{0};

    Status run(size_t job, std::chrono::microseconds work = {}) {
        {
            std::lock_guard lock(mutex);
            started.push_back(job);
        }
        int now = ++running;
        for (int seen = most_running; now > seen && !most_running.compare_exchange_weak(seen, now);) {
        }
        if (work.count() > 0) std::this_thread::sleep_for(work);
        --running;
        std::lock_guard lock(mutex);
        finished.push_back(job);
        return {};
    }
    size_t position(const std::vector<size_t>& order, size_t job) {
        return static_cast<size_t>(std::find(order.begin(), order.end(), job) - order.begin());
    }
};

TEST(Scheduler, AJobStartsOnlyAfterEveryJobItDependsOnFinished) {
    // 0 and 1 are independent; 2 needs both; 3 needs 2; 4 needs 0 and 3.
    std::vector<std::vector<size_t>> dependencies = {{}, {}, {0, 1}, {2}, {0, 3}};
    Recorder recorder;
    ASSERT_TRUE(run_dag(dependencies, 3, [&](size_t job) { return recorder.run(job, std::chrono::milliseconds(2)); }));
    ASSERT_EQ(recorder.finished.size(), dependencies.size());
    for (size_t job = 0; job < dependencies.size(); ++job)
        for (size_t dependency : dependencies[job])
            EXPECT_LT(recorder.position(recorder.finished, dependency), recorder.position(recorder.started, job))
                << "job " << job << " started before job " << dependency << " finished";
}

TEST(Scheduler, IndependentJobsRunAtOnceButNeverMoreThanTheWorkers) {
    std::vector<std::vector<size_t>> dependencies(12);
    Recorder recorder;
    ASSERT_TRUE(run_dag(dependencies, 3, [&](size_t job) { return recorder.run(job, std::chrono::milliseconds(20)); }));
    EXPECT_EQ(recorder.most_running.load(), 3);
}

TEST(Scheduler, AFailedJobsDependentsNeverStartAndTheLowestNumberedErrorIsReturned) {
    // 1 and 3 fail; 2 needs 1, 4 needs 2; 0 and 5 are independent of them.
    std::vector<std::vector<size_t>> dependencies = {{}, {}, {1}, {}, {2}, {0}};
    Recorder recorder;
    Status result = run_dag(dependencies, 2, [&](size_t job) -> Status {
        KILN_TRY(recorder.run(job));
        if (job == 1 || job == 3) return fail(str_cat("job ", job, " failed"));
        return {};
    });
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message(), "job 1 failed");
    std::vector<size_t> started = recorder.started;
    std::sort(started.begin(), started.end());
    EXPECT_EQ(started, (std::vector<size_t>{0, 1, 3, 5}));
}

// A job whose dependencies fail, succeed and fail again, in that order, was skipped twice: the count of
// unfinished jobs wrapped around and the workers waited forever.
TEST(Scheduler, AJobWithTwoFailedDependenciesAndASuccessfulOneIsSkippedOnce) {
    // Shared with the thread, which outlives the test if the scheduler hangs.
    auto promise = std::make_shared<std::promise<Status>>();
    std::future<Status> result = promise->get_future();
    std::thread([promise] {
        // With one worker the ready queue runs 0, 1, 2 in order: 0 fails, 1 succeeds, 2 fails.
        promise->set_value(run_dag({{}, {}, {}, {0, 1, 2}}, 1, [](size_t job) -> Status {
            if (job == 0 || job == 2) return fail(str_cat("job ", job, " failed"));
            return {};
        }));
    }).detach();
    ASSERT_EQ(result.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "the scheduler hangs";
    Status status = result.get();
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().message(), "job 0 failed");
}

TEST(Scheduler, AnExceptionIsTheJobsFailure) {
    Status result = run_dag({{}, {0}}, 2, [](size_t job) -> Status {
        if (job == 0) throw std::runtime_error("boom");
        return {};
    });
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("boom"), std::string::npos);
}

// Thousands of chained stages took quadratic time when every stage had a thread and each finished stage woke
// all of them. Scheduling work is now proportional to the number of dependencies: it is counted here rather
// than timed.
TEST(Scheduler, TenThousandChainedJobsCostWorkLinearInTheirNumber) {
    for (size_t jobs : {2500u, 10000u}) {
        std::vector<std::vector<size_t>> chain(jobs);
        for (size_t job = 1; job < jobs; ++job) chain[job] = {job - 1};
        std::vector<size_t> order;
        ScheduleStats stats;
        ASSERT_TRUE(run_dag(chain, 4, [&](size_t job) -> Status {
            order.push_back(job);
            return {};
        }, &stats));
        ASSERT_EQ(order.size(), jobs);
        EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
        EXPECT_EQ(stats.threads, 4u) << "a bounded pool, not a thread per stage";
        EXPECT_EQ(stats.dependency_updates, jobs - 1);
        // Each finished job wakes at most the other workers.
        EXPECT_LE(stats.wakeups, (stats.threads - 1) * jobs) << jobs << " jobs";
    }
}

TEST(Scheduler, TenThousandIndependentJobsAllRun) {
    std::vector<std::vector<size_t>> independent(10000);
    std::atomic<size_t> count{0};
    ScheduleStats stats;
    ASSERT_TRUE(run_dag(independent, 4, [&](size_t) -> Status {
        ++count;
        return {};
    }, &stats));
    EXPECT_EQ(count.load(), 10000u);
    EXPECT_EQ(stats.dependency_updates, 0u);
}

}  // namespace
}  // namespace kiln
