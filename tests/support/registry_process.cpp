#include "tests/support/registry_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

constexpr int k_start_attempts = 3;
constexpr std::chrono::milliseconds k_poll_interval{50};

// A port the kernel just handed out on 127.0.0.1. Another process may take it before the registry binds it;
// start() retries on a fresh port when that happens.
Result<std::uint16_t> free_port() {
    UniqueFd socket_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket_fd) return fail_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return fail_errno("bind 127.0.0.1:0");
    socklen_t length = sizeof address;
    if (::getsockname(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return fail_errno("getsockname");
    return ntohs(address.sin_port);
}

// What GET /v2/ over plain HTTP answered: its status line and whatever followed, up to a few hundred bytes.
struct Probe {
    int status = 0;  // 0 when nothing answers yet
    std::string text;
};

// Sends GET /v2/ over plain HTTP with raw sockets, so the fixture does not depend on the HTTP code it helps to
// test. A TLS registry answers it too: Go's TLS listener replies "400 ... Client sent an HTTP request to an
// HTTPS server" before any handshake, so the probe works whatever client certificate mTLS would demand.
Probe probe(std::uint16_t port) {
    UniqueFd socket_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket_fd) return {};
    timeval timeout{.tv_sec = 1, .tv_usec = 0};
    ::setsockopt(socket_fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(socket_fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return {};
    std::string request = str_cat("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:", port, "\r\n\r\n");
    if (::send(socket_fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return {};
    Probe result;
    char buffer[512];
    while (result.text.size() < 512) {
        ssize_t n = ::recv(socket_fd.get(), buffer, sizeof buffer, 0);
        if (n <= 0) break;
        result.text.append(buffer, static_cast<size_t>(n));
    }
    std::string_view line = result.text;
    // "HTTP/1.1 200 OK"
    std::uint64_t status = 0;
    if (line.starts_with("HTTP/") && line.size() >= 12 && parse_uint64(line.substr(9, 3), status))
        result.status = static_cast<int>(status);
    return result;
}

std::string indent(std::string_view text, std::string_view prefix) {
    std::string indented;
    for (const std::string& line : split(text, '\n'))
        if (!trim(line).empty()) indented += str_cat(prefix, line, "\n");
    return indented;
}

std::string registry_config(const std::string& storage_dir, std::uint16_t port, const RegistryProcessOptions& options) {
    std::string config = str_cat(
        "version: 0.1\n"
        "log:\n"
        "  level: info\n"
        "  formatter: text\n"
        "storage:\n"
        "  filesystem:\n"
        "    rootdirectory: ", storage_dir, "\n"
        "  delete:\n"
        "    enabled: true\n"
        "  maintenance:\n"
        "    uploadpurging:\n"
        "      enabled: false\n"
        "http:\n"
        "  addr: 127.0.0.1:", port, "\n"
        "  secret: kiln-test-upload-secret\n");
    if (!options.tls_certificate.empty()) {
        config += str_cat("  tls:\n"
                          "    certificate: ", options.tls_certificate, "\n"
                          "    key: ", options.tls_key, "\n");
        if (!options.tls_client_ca.empty())
            config += str_cat("    clientcas:\n"
                              "      - ", options.tls_client_ca, "\n");
    }
    config += "health:\n"
              "  storagedriver:\n"
              "    enabled: false\n";
    if (!options.auth_config.empty()) config += "auth:\n" + indent(options.auth_config, "  ");
    if (!options.proxy_remote_url.empty()) config += str_cat("proxy:\n  remoteurl: ", options.proxy_remote_url, "\n");
    return config;
}

// Whether `probe` shows the registry serving as configured. With auth, GET /v2/ is refused with 401; a TLS
// registry refuses the plain-HTTP probe with its 400 (the handshake, and any client certificate, comes later).
bool answers_as_configured(const Probe& probe, const RegistryProcessOptions& options) {
    if (!options.tls_certificate.empty())
        return probe.status == 400 && probe.text.find("HTTPS server") != std::string::npos;
    return probe.status == 200 || (probe.status == 401 && !options.auth_config.empty());
}

constexpr const char* k_htpasswd = "/usr/bin/htpasswd";

}  // namespace

std::optional<std::string> RegistryProcess::unavailable_reason() {
    std::string binary(k_binary);
    if (::access(binary.c_str(), X_OK) != 0)
        return str_cat("unavailable: ", binary, " is not installed (Debian package docker-registry)");
    return std::nullopt;
}

std::optional<std::string> RegistryProcess::htpasswd_unavailable_reason() {
    if (::access(k_htpasswd, X_OK) != 0)
        return str_cat("unavailable: ", k_htpasswd, " is not installed (Debian package apache2-utils)");
    return std::nullopt;
}

Result<std::string> RegistryProcess::htpasswd_auth_config(
    const std::string& dir, const std::vector<std::pair<std::string, std::string>>& users) {
    if (auto reason = htpasswd_unavailable_reason()) return fail(*reason);
    if (users.empty()) return fail("htpasswd_auth_config: no users");
    std::string path = dir + "/htpasswd";
    bool first = true;
    for (const auto& [user, password] : users) {
        // -B: distribution accepts bcrypt only. -i: the password comes on stdin, never in a command line.
        std::vector<std::string> argv = {k_htpasswd, first ? "-iBc" : "-iB", path, user};
        KILN_ASSIGN(ProcessResult result, run_process(argv, {.stdin_bytes = password}));
        // htpasswd's messages never echo the password, so its stderr may go into the error.
        if (result.exit_code != 0)
            return fail(str_cat("htpasswd for user ", user, " exited with status ", result.exit_code, ": ",
                                trim(result.stderr_bytes)));
        first = false;
    }
    return str_cat("htpasswd:\n"
                   "  realm: kiln-test-registry\n"
                   "  path: ", path, "\n");
}

Result<std::unique_ptr<RegistryProcess>> RegistryProcess::start(const RegistryProcessOptions& options) {
    if (options.tls_certificate.empty() != options.tls_key.empty())
        return fail("RegistryProcessOptions: tls_certificate and tls_key go together");
    if (!options.tls_client_ca.empty() && options.tls_certificate.empty())
        return fail("RegistryProcessOptions: tls_client_ca needs tls_certificate and tls_key");
    if (auto reason = unavailable_reason()) return fail(*reason);
    for (int attempt = 1;; ++attempt) {
        auto registry = start_on_free_port(options);
        // Losing the port to another process is the one failure worth another try.
        if (registry || attempt == k_start_attempts ||
            registry.error().message().find("address already in use") == std::string::npos)
            return registry;
    }
}

Result<std::unique_ptr<RegistryProcess>> RegistryProcess::start_on_free_port(const RegistryProcessOptions& options) {
    std::unique_ptr<RegistryProcess> registry(new RegistryProcess());
    registry->m_stop_grace = options.stop_grace;
    registry->m_tls = !options.tls_certificate.empty();
    KILN_ASSIGN(registry->m_dir, TempDir::create(default_temp_parent(), "kiln-registry-"));
    const std::string& dir = registry->m_dir.path();
    registry->m_storage_dir = dir + "/storage";
    registry->m_log_path = dir + "/registry.log";
    KILN_TRY(make_directories(registry->m_storage_dir));
    KILN_ASSIGN(registry->m_port, free_port());
    registry->m_host_port = str_cat("127.0.0.1:", registry->m_port);
    std::string config_path = dir + "/config.yml";
    KILN_TRY(write_file_atomic(config_path,
                               registry_config(registry->m_storage_dir, registry->m_port, options)));

    UniqueFd log_fd(::open(registry->m_log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log_fd) return fail_errno(str_cat("create ", registry->m_log_path));
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_fd) return fail_errno("open /dev/null");
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
    std::string binary(k_binary);
    std::vector<std::string> argv_strings = {binary, "serve", config_path};
    // A clean environment: REGISTRY_* variables of the caller must not reconfigure the test registry.
    std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "HOME=" + dir};
    std::vector<char*> argv, envp;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        ::dup2(null_fd.get(), 0);
        ::dup2(log_fd.get(), 1);
        ::dup2(log_fd.get(), 2);
        // If the test process dies without running destructors (a crash, SIGKILL), the registry dies too.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    registry->m_pid = pid;
    if (auto ready = registry->wait_until_ready(options); !ready) {
        registry->stop();
        return fail(str_cat("registry on ", registry->m_host_port, " did not start: ", ready.error().message(),
                            "\n--- registry log ---\n", registry->log()));
    }
    return registry;
}

Status RegistryProcess::wait_until_ready(const RegistryProcessOptions& options) {
    auto deadline = std::chrono::steady_clock::now() + options.startup_timeout;
    Probe last;
    while (std::chrono::steady_clock::now() < deadline) {
        int wait_status = 0;
        if (::waitpid(m_pid, &wait_status, WNOHANG) == m_pid) {
            m_pid = -1;
            return fail(str_cat("it exited with status ", exit_code_from_wait_status(wait_status)));
        }
        last = probe(m_port);
        if (answers_as_configured(last, options)) return {};
        std::this_thread::sleep_for(k_poll_interval);
    }
    return fail(str_cat("GET /v2/ did not answer as configured within ", options.startup_timeout.count(),
                        " ms (last status ", last.status, ")"));
}

void RegistryProcess::stop() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + m_stop_grace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
            m_pid = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(m_pid, SIGKILL);
    while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
}

RegistryProcess::~RegistryProcess() { stop(); }

std::string RegistryProcess::url(std::string_view path) const { return str_cat(scheme(), "://", m_host_port, path); }

std::string RegistryProcess::blob_data_path(std::string_view digest) const {
    std::string_view hex = digest.substr(digest.find(':') + 1);
    return str_cat(m_storage_dir, "/docker/registry/v2/blobs/sha256/", hex.substr(0, 2), "/", hex, "/data");
}

std::string RegistryProcess::log() const {
    auto bytes = read_file(m_log_path, 16 << 20);
    return bytes ? *bytes : str_cat("(no log: ", bytes.error().message(), ")");
}

}  // namespace kiln::test
