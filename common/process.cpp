#include "common/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "common/fd.hpp"
#include "common/strings.hpp"

extern char** environ;

namespace kiln {
namespace {

std::vector<char*> to_c_strings(const std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
    pointers.push_back(nullptr);
    return pointers;
}

// Kills and reaps a started child on every early return, so that no failure leaves a zombie or a runaway helper.
class ChildGuard {
public:
    explicit ChildGuard(pid_t pid) : m_pid(pid) {}
    ChildGuard(const ChildGuard&) = delete;
    ChildGuard& operator=(const ChildGuard&) = delete;
    ~ChildGuard() {
        if (m_pid <= 0) return;
        ::kill(m_pid, SIGKILL);
        while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    // Waits for the child to exit on its own, until `deadline` if there is one; afterwards the guard has nothing
    // left to do. False when the deadline passed first.
    Result<std::optional<int>> wait(const std::string& name,
                                    std::optional<std::chrono::steady_clock::time_point> deadline) {
        int status = 0;
        while (true) {
            pid_t done = ::waitpid(m_pid, &status, deadline ? WNOHANG : 0);
            if (done == m_pid) break;
            if (done < 0 && errno != EINTR) return fail_errno(str_cat("waitpid ", name));
            if (done == 0) {
                // Out of pipes to poll (the child closed them) but still running: look again shortly.
                if (std::chrono::steady_clock::now() >= *deadline) return std::nullopt;
                ::usleep(10000);
            }
        }
        m_pid = -1;
        return exit_code_from_wait_status(status);
    }

private:
    pid_t m_pid;
};

Error timeout_error(const std::string& name, std::chrono::milliseconds timeout) {
    return Error(str_cat(name, " did not finish within ", timeout.count(), " ms")).set_retryable();
}

// write() to a pipe whose reader has exited, without letting SIGPIPE kill the process: the signal is blocked in
// this thread for the call and, when the write raised it, consumed before it is unblocked.
ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
    sigset_t sigpipe, previous;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &sigpipe, &previous);
    ssize_t n = ::write(fd, data, size);
    int saved_errno = errno;
    if (n < 0 && errno == EPIPE && !was_pending) {
        timespec zero{};
        while (::sigtimedwait(&sigpipe, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    errno = saved_errno;
    return n;
}

}  // namespace

namespace {

// [begin, end) of the argument strings and of the environment strings that follow them.
char* g_exec_strings_begin = nullptr;
char* g_exec_strings_end = nullptr;

// Extends `end` over the strings of `list` that follow it without a gap, as exec places them.
char* extend_over(char** list, char* end) {
    for (; list && *list; ++list) {
        if (*list != end) break;
        end += std::strlen(*list) + 1;
    }
    return end;
}

}  // namespace

void remember_exec_strings(char** argv, char** envp) {
    if (!argv || !argv[0]) return;
    char* end = extend_over(argv, argv[0]);
    g_exec_strings_begin = argv[0];
    g_exec_strings_end = extend_over(envp, end);
}

void replace_exec_strings(const char* title) {
    char* at = g_exec_strings_begin;
    if (!at) return;
    size_t size = static_cast<size_t>(g_exec_strings_end - at);
    size_t length = 0;
    while (title[length] && length + 1 < size) ++length;
    std::memcpy(at, title, length);
    std::memset(at + length, 0, size - length);
}

int exit_code_from_wait_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

Result<pid_t> spawn_child(const std::vector<std::string>& argv, const SpawnOptions& options) {
    if (argv.empty()) return fail("spawn_child: empty command");
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    if (int rc = ::posix_spawn_file_actions_init(&actions); rc != 0) return fail_errno("posix_spawn_file_actions_init", rc);
    if (int rc = ::posix_spawnattr_init(&attributes); rc != 0) {
        ::posix_spawn_file_actions_destroy(&actions);
        return fail_errno("posix_spawnattr_init", rc);
    }
    for (int fd : {0, 1, 2}) {
        bool given = std::any_of(options.descriptors.begin(), options.descriptors.end(),
                                 [&](const auto& pair) { return pair.first == fd; });
        if (!given) ::posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    for (const auto& [child_fd, caller_fd] : options.descriptors)
        ::posix_spawn_file_actions_adddup2(&actions, caller_fd, child_fd);
    if (!options.working_directory.empty())
        ::posix_spawn_file_actions_addchdir_np(&actions, options.working_directory.c_str());
    sigset_t none;
    sigset_t every;
    ::sigemptyset(&none);
    ::sigfillset(&every);
    ::posix_spawnattr_setsigmask(&attributes, &none);
    short flags = POSIX_SPAWN_SETSIGMASK;
    if (options.default_signals) {
        ::posix_spawnattr_setsigdefault(&attributes, &every);
        flags |= POSIX_SPAWN_SETSIGDEF;
    }
    if (options.new_session) flags |= POSIX_SPAWN_SETSID;
    ::posix_spawnattr_setflags(&attributes, flags);
    std::vector<char*> args = to_c_strings(argv);
    std::vector<char*> env = to_c_strings(options.environment);
    char** environment = options.environment.empty() ? environ : env.data();
    pid_t pid = 0;
    int rc = options.path.empty()
                 ? ::posix_spawnp(&pid, argv[0].c_str(), &actions, &attributes, args.data(), environment)
                 : ::posix_spawn(&pid, options.path.c_str(), &actions, &attributes, args.data(), environment);
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    if (rc != 0) return fail_errno(str_cat("start ", argv[0]), rc);
    return pid;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    if (argv.empty()) return fail("run_process: empty command");
    KILN_ASSIGN(auto stdin_pipe, make_pipe());
    KILN_ASSIGN(auto stdout_pipe, make_pipe());
    KILN_ASSIGN(auto stderr_pipe, make_pipe());

    SpawnOptions spawn{.environment = options.environment, .working_directory = options.working_directory};
    if (!options.stdin_bytes.empty()) spawn.descriptors.emplace_back(0, stdin_pipe.first.get());
    if (options.capture_stdout) spawn.descriptors.emplace_back(1, stdout_pipe.second.get());
    else spawn.descriptors.emplace_back(1, 1);
    if (options.capture_stderr) spawn.descriptors.emplace_back(2, stderr_pipe.second.get());
    else spawn.descriptors.emplace_back(2, 2);
    KILN_ASSIGN(pid_t pid, spawn_child(argv, spawn));
    ChildGuard child(pid);
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline = Clock::now() + options.timeout;

    stdin_pipe.first.reset();
    stdout_pipe.second.reset();
    stderr_pipe.second.reset();

    ProcessResult result;
    // Feed stdin and drain both outputs together so that no pipe can fill up and deadlock the child.
    size_t stdin_offset = 0;
    if (options.stdin_bytes.empty()) stdin_pipe.second.reset();
    // Non-blocking, so that a write larger than the pipe's free space returns what fitted instead of waiting
    // for a child that is itself waiting for its output to be read.
    if (stdin_pipe.second && ::fcntl(stdin_pipe.second.get(), F_SETFL, O_NONBLOCK) != 0)
        return fail_errno(str_cat("make the stdin of ", argv[0], " non-blocking"));
    while (stdin_pipe.second || stdout_pipe.first || stderr_pipe.first) {
        pollfd fds[3];
        int count = 0;
        int in_index = -1, out_index = -1, err_index = -1;
        if (stdin_pipe.second) {
            in_index = count;
            fds[count++] = {stdin_pipe.second.get(), POLLOUT, 0};
        }
        if (stdout_pipe.first) {
            out_index = count;
            fds[count++] = {stdout_pipe.first.get(), POLLIN, 0};
        }
        if (stderr_pipe.first) {
            err_index = count;
            fds[count++] = {stderr_pipe.first.get(), POLLIN, 0};
        }
        int wait_ms = -1;
        if (options.timeout.count() > 0) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return fail(timeout_error(argv[0], options.timeout));
            wait_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
        }
        if (::poll(fds, count, wait_ms) < 0) {
            if (errno == EINTR) continue;
            return fail_errno("poll");
        }
        if (in_index >= 0 && fds[in_index].revents) {
            ssize_t n = write_without_sigpipe(stdin_pipe.second.get(), options.stdin_bytes.data() + stdin_offset,
                                              options.stdin_bytes.size() - stdin_offset);
            if (n > 0) stdin_offset += static_cast<size_t>(n);
            bool retry = n < 0 && (errno == EAGAIN || errno == EINTR);
            if ((n < 0 && !retry) || stdin_offset == options.stdin_bytes.size()) stdin_pipe.second.reset();
        }
        auto drain = [](UniqueFd& fd, std::string& into) {
            char buffer[65536];
            ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
            if (n > 0)
                into.append(buffer, static_cast<size_t>(n));
            else if (n == 0 || errno != EINTR)
                fd.reset();
        };
        if (out_index >= 0 && fds[out_index].revents) drain(stdout_pipe.first, result.stdout_bytes);
        if (err_index >= 0 && fds[err_index].revents) drain(stderr_pipe.first, result.stderr_bytes);
        if (options.output_limit > 0 &&
            result.stdout_bytes.size() + result.stderr_bytes.size() > options.output_limit)
            return fail(str_cat(argv[0], " wrote more than ", options.output_limit, " bytes of output"));
    }

    std::optional<Clock::time_point> wait_deadline;
    if (options.timeout.count() > 0) wait_deadline = deadline;
    KILN_ASSIGN(std::optional<int> exit_code, child.wait(argv[0], wait_deadline));
    if (!exit_code) return fail(timeout_error(argv[0], options.timeout));
    result.exit_code = *exit_code;
    return result;
}

}  // namespace kiln
