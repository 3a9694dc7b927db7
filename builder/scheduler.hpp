#pragma once
// Runs jobs whose dependencies form a DAG (a build's stages): a job starts as soon as every job it depends on
// has succeeded, from a ready queue served by a bounded pool of workers. Finishing a job costs the number of
// jobs waiting on it, so thousands of chained stages schedule in linear time.

#include <cstddef>
#include <functional>
#include <vector>

#include "builder/build_inputs.hpp"
#include "builder/stage_builder.hpp"
#include "common/error.hpp"

namespace kiln {

// What scheduling cost, for tests that check its growth.
struct ScheduleStats {
    size_t threads = 0;         // workers started
    size_t dependency_updates = 0;  // decrements of a waiting job's count of unfinished dependencies
    size_t wakeups = 0;         // times a worker waited for a ready job and woke
};

// Runs run(0) … run(n - 1), where n = dependencies.size() and dependencies[i] lists jobs (each < n) that must
// succeed before job i starts; at most `workers` jobs run at once. A job whose dependency failed is never
// started. The error returned is the lowest-numbered failing job's, so that the same input always reports the
// same failure. An exception thrown by a job is its failure.
Status run_dag(const std::vector<std::vector<size_t>>& dependencies, size_t workers,
               const std::function<Status(size_t)>& run, ScheduleStats* stats = nullptr);

// Builds every stage of build.plan, each as soon as the stages it needs are built, at most `workers` at once,
// into `outputs` (one per planned stage, in plan order), which the scheduler owns: each stage is handed only
// the finished stages it needs. When stages may run at once, each one's log lines carry its name.
Status build_stages(const BuildInputs& build, std::vector<StageOutput>& outputs, size_t workers);

}  // namespace kiln
