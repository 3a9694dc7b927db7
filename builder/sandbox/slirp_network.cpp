#include "builder/sandbox/slirp_network.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// How long slirp4netns may take to configure the interface.
constexpr int k_ready_timeout_ms = 10000;

// The descriptors slirp4netns gets, as --ready-fd and --exit-fd.
constexpr int k_child_ready_fd = 3;
constexpr int k_child_exit_fd = 4;

// What slirp4netns wrote to its stderr, at most 4 KiB, once it has ended.
std::string drain(int fd) {
    std::string text;
    char buffer[1024];
    while (text.size() < 4096) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buffer, static_cast<size_t>(n));
    }
    return std::string(trim(text));
}

void stop(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace

std::optional<std::string> private_network_resolv_conf(std::string_view host) {
    std::string kept;
    bool any_nameserver = false;
    bool all_loopback = true;
    for (const std::string& line : split(host, '\n')) {
        std::string_view text = trim(line);
        if (text.empty()) continue;
        if (text.starts_with("nameserver") && text.size() > 10 && (text[10] == ' ' || text[10] == '\t')) {
            std::string_view address = trim(text.substr(10));
            any_nameserver = true;
            all_loopback = all_loopback && (address.starts_with("127.") || address == "::1");
            continue;
        }
        kept += line + "\n";
    }
    if (!any_nameserver || !all_loopback) return std::nullopt;
    return str_cat("nameserver ", k_slirp_dns, "\n", kept);
}

Result<SlirpNetwork> SlirpNetwork::start(pid_t pid) {
    KILN_ASSIGN(auto ready, make_pipe());
    KILN_ASSIGN(auto exit, make_pipe());
    KILN_ASSIGN(auto errors, make_pipe());
    // kiln's own signal dispositions stay: slirp4netns has always run with SIGPIPE ignored under kiln.
    SpawnOptions options{.descriptors = {{2, errors.second.get()},
                                         {k_child_ready_fd, ready.second.get()},
                                         {k_child_exit_fd, exit.first.get()}}};
    auto child = spawn_child({"slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
                              "--enable-seccomp", str_cat("--ready-fd=", k_child_ready_fd),
                              str_cat("--exit-fd=", k_child_exit_fd), str_cat(pid), "tap0"},
                             options);
    if (!child)
        return fail(str_cat(child.error().message(), " for --run-network=private (Debian's package slirp4netns)"));
    ready.second.reset();
    exit.first.reset();
    errors.second.reset();

    pollfd wait{ready.first.get(), POLLIN, 0};
    int polled = 0;
    while ((polled = ::poll(&wait, 1, k_ready_timeout_ms)) < 0 && errno == EINTR) {
    }
    char byte = 0;
    if (polled > 0 && ::read(ready.first.get(), &byte, 1) == 1) return SlirpNetwork(*child, std::move(exit.second));
    stop(*child);
    std::string said = drain(errors.first.get());
    return fail(str_cat("slirp4netns did not configure the RUN's network",
                        polled == 0 ? str_cat(" within ", k_ready_timeout_ms / 1000, " s") : std::string(),
                        said.empty() ? std::string() : str_cat(": ", said)));
}

SlirpNetwork::SlirpNetwork(SlirpNetwork&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_exit_write(std::move(other.m_exit_write)) {}

SlirpNetwork::~SlirpNetwork() {
    if (m_pid < 0) return;
    m_exit_write.reset();  // slirp4netns exits when its exit descriptor closes
    int status = 0;
    pid_t reaped = 0;
    for (int i = 0; i < 100 && (reaped = ::waitpid(m_pid, &status, WNOHANG)) == 0; ++i) ::usleep(10000);
    if (reaped == 0) stop(m_pid);
}

}  // namespace kiln
