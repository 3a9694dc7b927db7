#pragma once
// Bounded fan-out for independent jobs: pulling layers, extracting them into directories of their own.

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/log.hpp"

namespace kiln {

// Runs job(0) … job(count - 1) on up to `concurrency` threads (the caller's among them). After a failure no
// new job starts; the result is the error of the lowest-numbered job that failed, so that what is reported
// does not depend on timing.
inline Status run_bounded(size_t count, size_t concurrency, const std::function<Status(size_t)>& job) {
    std::vector<std::optional<Error>> errors(count);
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    LogPlace place = LogLabel::current();  // a copy: the workers read it while this thread runs jobs too
    auto worker = [&] {
        LogLabel labelled(place);  // the jobs' log lines belong to whoever started them
        while (!failed) {
            size_t i = next++;
            if (i >= count) return;
            if (Status status = job(i); !status) {
                errors[i] = std::move(status.error());
                failed = true;
            }
        }
    };
    std::vector<std::thread> threads;
    for (size_t i = 1; i < std::min(count, concurrency); ++i) threads.emplace_back(worker);
    worker();
    for (std::thread& thread : threads) thread.join();
    for (std::optional<Error>& error : errors)
        if (error) return fail(std::move(*error));
    return {};
}

}  // namespace kiln
