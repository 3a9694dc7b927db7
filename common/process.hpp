#pragma once
// Running helper programs (newuidmap, skopeo in tests) and collecting their output.

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace kiln {

struct ProcessOptions {
    // Bytes written to the child's stdin (then closed). Without them stdin is /dev/null.
    std::string stdin_bytes;
    // Capture stdout / stderr into the result; otherwise they are inherited.
    bool capture_stdout = true;
    bool capture_stderr = true;
    // Replaces the environment when non-empty ("K=V" entries).
    std::vector<std::string> environment;
    // Working directory of the child; empty keeps the caller's.
    std::string working_directory;
    // When the child runs longer, it is killed (SIGKILL) and run_process fails, retryably. Zero: no bound.
    std::chrono::milliseconds timeout{0};
    // When captured stdout plus stderr grow past this many bytes, the child is killed and run_process fails.
    // Zero: no bound.
    size_t output_limit = 0;
};

struct ProcessResult {
    int exit_code = 0;  // 128 + signal number when killed by a signal
    std::string stdout_bytes;
    std::string stderr_bytes;
};

// Runs argv[0] (searched in PATH) to completion. Failing to start it, or overrunning a bound, is an error; a
// non-zero exit is not. A child that exits without reading its stdin does not raise SIGPIPE in the caller.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// How spawn_child() starts a child that its caller then watches and reaps.
struct SpawnOptions {
    // The program file; empty searches argv[0] in PATH.
    std::string path;
    // Descriptors the child gets: {descriptor in the child, descriptor of the caller}. Standard ones that are
    // not listed are /dev/null.
    std::vector<std::pair<int, int>> descriptors;
    // Replaces the environment when non-empty ("K=V" entries).
    std::vector<std::string> environment;
    // Working directory of the child; empty keeps the caller's.
    std::string working_directory;
    // A session of its own: kiln's terminal and process group signals do not reach it.
    bool new_session = false;
    // Every signal back to its default action, ignored ones included.
    bool default_signals = false;
};

// Starts `argv` and returns its pid. Its signal mask is empty whatever the calling thread blocks (kiln blocks
// SIGTERM and SIGINT everywhere but its cancellation thread). The error names argv[0].
Result<pid_t> spawn_child(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// Decodes a waitpid() status into an exit code (128 + signal for a signal).
int exit_code_from_wait_status(int status);

// The memory that /proc/PID/cmdline and /proc/PID/environ show: the argument and environment strings as
// exec laid them out. main() remembers where they are, before anything else runs.
void remember_exec_strings(char** argv, char** envp);
// Overwrites that memory with `title` and NULs, so that /proc/PID/cmdline shows only the title and
// /proc/PID/environ nothing. For a forked copy of kiln (a RUN sandbox's init, which a step can see), whose
// flags and build arguments are not the step's to read. Async-signal-safe.
void replace_exec_strings(const char* title);

}  // namespace kiln
