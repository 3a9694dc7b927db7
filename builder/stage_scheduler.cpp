#include "builder/stage_scheduler.hpp"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <semaphore>
#include <thread>

#include "builder/stage_builder.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

enum class StageProgress { pending, built, failed };

std::vector<size_t> dependencies_of(const PlannedStage& planned) {
    std::vector<size_t> dependencies = planned.copy_sources;
    if (planned.base_stage) dependencies.push_back(*planned.base_stage);
    return dependencies;
}

}  // namespace

Status build_stages(BuildSession& session, size_t max_parallel) {
    const std::vector<PlannedStage>& stages = session.plan.stages;
    // Every entry exists before any thread starts: threads then only assign to their own entry.
    for (const PlannedStage& planned : stages) session.completed.try_emplace(planned.index);

    std::mutex mutex;
    std::condition_variable changed;
    std::map<size_t, StageProgress> progress;
    std::map<size_t, Error> errors;
    for (const PlannedStage& planned : stages) progress[planned.index] = StageProgress::pending;
    std::counting_semaphore<> slots(static_cast<std::ptrdiff_t>(std::max<size_t>(1, max_parallel)));

    auto build_one = [&](const PlannedStage& planned) {
        std::vector<size_t> dependencies = dependencies_of(planned);
        {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] {
                for (size_t dependency : dependencies)
                    if (progress.at(dependency) == StageProgress::pending) return false;
                return true;
            });
            for (size_t dependency : dependencies) {
                if (progress.at(dependency) == StageProgress::failed) {
                    // Not started: the dependency's own error explains the build's failure.
                    progress[planned.index] = StageProgress::failed;
                    changed.notify_all();
                    return;
                }
            }
        }
        slots.acquire();
        Result<StageResult> result = fail("internal error: the stage was not built");
        try {
            result = build_stage(session, planned);
        } catch (const std::exception& e) {
            result = fail(str_cat("internal error building stage ", planned.index, ": ", e.what()));
        }
        slots.release();
        std::lock_guard lock(mutex);
        if (result) {
            session.completed[planned.index] = std::move(*result);
            progress[planned.index] = StageProgress::built;
        } else {
            errors.emplace(planned.index, std::move(result.error()));
            progress[planned.index] = StageProgress::failed;
        }
        changed.notify_all();
    };

    if (stages.size() == 1) {
        build_one(stages.front());  // the common case needs no thread
    } else {
        std::vector<std::thread> threads;
        threads.reserve(stages.size());
        for (const PlannedStage& planned : stages) threads.emplace_back(build_one, std::cref(planned));
        for (std::thread& thread : threads) thread.join();
    }
    if (!errors.empty()) return fail(std::move(errors.begin()->second));
    return {};
}

}  // namespace kiln
