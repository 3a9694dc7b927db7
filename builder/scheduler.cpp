#include "builder/scheduler.hpp"

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "builder/stage_builder.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

class DagRun {
public:
    DagRun(const std::vector<std::vector<size_t>>& dependencies, const std::function<Status(size_t)>& run)
        : m_run(run), m_dependents(dependencies.size()), m_waiting_on(dependencies.size(), 0),
          m_unfinished(dependencies.size()) {
        for (size_t job = 0; job < dependencies.size(); ++job) {
            for (size_t dependency : dependencies[job]) {
                m_dependents[dependency].push_back(job);
                ++m_waiting_on[job];
            }
            if (m_waiting_on[job] == 0) m_ready.push_back(job);
        }
    }

    void work() {
        std::unique_lock lock(m_mutex);
        while (true) {
            while (m_ready.empty() && m_unfinished > 0) {
                m_changed.wait(lock);
                ++m_stats.wakeups;
            }
            if (m_ready.empty()) return;  // everything finished or was skipped
            size_t job = m_ready.front();
            m_ready.pop_front();
            lock.unlock();
            Status result = run_one(job);
            lock.lock();
            finish(job, std::move(result));
        }
    }

    Status result(ScheduleStats* stats) {
        if (stats) *stats = m_stats;
        if (m_errors.empty()) return {};
        return fail(std::move(m_errors.begin()->second));
    }

    ScheduleStats& stats() { return m_stats; }

private:
    Status run_one(size_t job) {
        try {
            return m_run(job);
        } catch (const std::exception& e) {
            return fail(str_cat("internal error in job ", job, ": ", e.what()));
        }
    }

    // Under the lock: the job's dependents move towards the ready queue, or are skipped with everything that
    // waits on them when it failed.
    void finish(size_t job, Status result) {
        --m_unfinished;
        if (result) {
            for (size_t dependent : m_dependents[job]) {
                // A dependent that another failure already skipped stays skipped.
                if (m_waiting_on[dependent] == k_skipped) continue;
                ++m_stats.dependency_updates;
                if (--m_waiting_on[dependent] == 0) m_ready.push_back(dependent);
            }
        } else {
            m_errors.emplace(job, std::move(result.error()));
            skip_dependents_of(job);
        }
        m_changed.notify_all();  // at most `workers` threads wait here
    }

    void skip_dependents_of(size_t failed) {
        std::vector<size_t> pending = m_dependents[failed];
        while (!pending.empty()) {
            size_t job = pending.back();
            pending.pop_back();
            if (m_waiting_on[job] == k_skipped) continue;
            // Not started: the dependency's own error explains the failure.
            m_waiting_on[job] = k_skipped;
            --m_unfinished;
            pending.insert(pending.end(), m_dependents[job].begin(), m_dependents[job].end());
        }
    }

    static constexpr size_t k_skipped = static_cast<size_t>(-1);

    const std::function<Status(size_t)>& m_run;
    std::vector<std::vector<size_t>> m_dependents;
    std::vector<size_t> m_waiting_on;  // unfinished dependencies, or k_skipped
    size_t m_unfinished;
    std::deque<size_t> m_ready;
    std::map<size_t, Error> m_errors;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    ScheduleStats m_stats;
};

}  // namespace

Status run_dag(const std::vector<std::vector<size_t>>& dependencies, size_t workers,
               const std::function<Status(size_t)>& run, ScheduleStats* stats) {
    DagRun dag(dependencies, run);
    size_t threads = std::min(std::max<size_t>(workers, 1), dependencies.size());
    dag.stats().threads = threads;
    if (threads <= 1) {
        dag.work();  // the common case needs no thread
        return dag.result(stats);
    }
    LogPlace place = LogLabel::current();
    std::vector<std::thread> pool;
    for (size_t i = 0; i < threads; ++i)
        pool.emplace_back([&] {
            LogLabel labelled(place);
            dag.work();
        });
    for (std::thread& thread : pool) thread.join();
    return dag.result(stats);
}

Status build_stages(const BuildInputs& build, std::vector<StageOutput>& outputs, size_t workers) {
    const BuildPlan& plan = build.plan;
    std::vector<size_t> position(plan.stages.empty() ? 0 : plan.stages.back().index + 1);
    for (size_t i = 0; i < plan.stages.size(); ++i) position[plan.stages[i].index] = i;
    std::vector<std::vector<size_t>> dependencies;
    for (const PlannedStage& stage : plan.stages) {
        std::vector<size_t> jobs;
        for (size_t dependency : stage.dependencies()) jobs.push_back(position[dependency]);
        dependencies.push_back(std::move(jobs));
    }
    outputs.resize(plan.stages.size());
    bool labelled = plan.has_parallel_stages();
    auto build_one = [&](size_t job) -> Status {
        const PlannedStage& stage = plan.stages[job];
        // Each stage sees only the finished stages it needs, which the scheduler finished before starting it.
        StageDependencies given;
        if (stage.base_stage) given.base = &outputs[position[*stage.base_stage]];
        for (size_t read : stage.reads) {
            const StageOutput& output = outputs[position[read]];
            given.reads[read] = ReadableStage{.filesystem = output.filesystem.get(), .diff_ids = output.image.config().diff_ids};
        }
        // Every line knows its stage; text shows it when stages may run at once.
        LogLabel label(stage.label, labelled ? StageLabel::shown : StageLabel::hidden);
        KILN_ASSIGN(outputs[job], build_stage(build, stage, given));
        return {};
    };
    return run_dag(dependencies, workers, build_one);
}

}  // namespace kiln
