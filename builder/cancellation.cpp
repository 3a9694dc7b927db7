#include "builder/cancellation.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "builder/work_dir.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

struct Registry {
    std::mutex mutex;
    std::uint64_t next_id = 1;
    std::map<std::uint64_t, std::string> steps;  // by id: in the order they started
};

Registry& registry() {
    static Registry* instance = new Registry();  // never destroyed: the signal thread may use it at any time
    return *instance;
}

[[noreturn]] void cancel(int signal) {
    Registry& state = registry();
    std::vector<std::string> steps;
    {
        std::lock_guard lock(state.mutex);
        for (const auto& [id, step] : state.steps) steps.push_back(step);
    }
    const char* name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    log(LogLevel::error, steps.empty() ? str_cat("cancelled by ", name, " between steps")
                                       : str_cat("cancelled by ", name, " during ", join(steps, ", ")));
    // What the build's threads report from here on is the cancellation's doing, not news.
    set_log_sink([](LogLevel, std::string_view) {});
    for (const std::string& path : take_live_work_dirs()) dispose_directory(path);
    ::_exit(128 + signal);
}

}  // namespace

void handle_cancellation() {
    sigset_t signals;
    ::sigemptyset(&signals);
    ::sigaddset(&signals, SIGTERM);
    ::sigaddset(&signals, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::thread([signals] {
        int signal = 0;
        while (::sigwait(&signals, &signal) != 0) {
        }
        cancel(signal);
    }).detach();
}

StepInProgress::StepInProgress(std::string description) {
    Registry& state = registry();
    std::lock_guard lock(state.mutex);
    m_id = state.next_id++;
    state.steps.emplace(m_id, std::move(description));
}

StepInProgress::~StepInProgress() {
    Registry& state = registry();
    std::lock_guard lock(state.mutex);
    state.steps.erase(m_id);
}

}  // namespace kiln
