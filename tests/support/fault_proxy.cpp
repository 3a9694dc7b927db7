#include "tests/support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace kiln::test {
namespace {

constexpr size_t k_max_head = 1 << 20;
constexpr size_t k_max_body = 1ull << 31;
// A client may keep an idle connection as long as it likes; within a message, or from the registry, silence
// this long ends the exchange so that a broken test cannot hang on the proxy.
constexpr std::chrono::milliseconds k_message_timeout{60000};
constexpr std::chrono::milliseconds k_no_timeout{-1};

using Headers = std::vector<std::pair<std::string, std::string>>;

std::optional<std::string> find_header(const Headers& headers, std::string_view name) {
    for (const auto& [key, value] : headers)
        if (to_lower(key) == to_lower(name)) return value;
    return std::nullopt;
}

// Connection-level fields, which the proxy sets itself on each side.
bool is_hop_by_hop(std::string_view name) {
    std::string lower = to_lower(name);
    return lower == "connection" || lower == "keep-alive" || lower == "proxy-connection" ||
           lower == "expect" || lower == "transfer-encoding" || lower == "te" || lower == "upgrade" ||
           lower == "content-length";
}

// "Name: value" lines of a message head after its first line.
Headers parse_headers(const std::vector<std::string>& lines) {
    Headers headers;
    for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        headers.emplace_back(std::string(trim(lines[i].substr(0, colon))),
                             std::string(trim(lines[i].substr(colon + 1))));
    }
    return headers;
}

// Blocking-free socket I/O that gives up when the proxy stops (the stop pipe hangs up) or after a timeout.
class Io {
public:
    explicit Io(int stop_fd) : m_stop_fd(stop_fd) {}

    // Waits for `events` on `fd`; false when stopping or after `timeout` (negative: none).
    bool wait(int fd, short events, std::chrono::milliseconds timeout) const {
        pollfd fds[2] = {{m_stop_fd, POLLIN, 0}, {fd, events, 0}};
        int count = fd >= 0 ? 2 : 1;
        while (true) {
            int rc = ::poll(fds, static_cast<nfds_t>(count), static_cast<int>(timeout.count()));
            if (rc < 0 && errno == EINTR) continue;
            return rc > 0 && fds[0].revents == 0;
        }
    }

    // Appends what arrives to `into`: the byte count, 0 at end of stream, -1 on error, stop or timeout.
    ssize_t receive(int fd, std::string& into, std::chrono::milliseconds timeout) const {
        char buffer[65536];
        while (true) {
            if (!wait(fd, POLLIN, timeout)) return -1;
            ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n > 0) into.append(buffer, static_cast<size_t>(n));
            return n;
        }
    }

    // Receives until `into` holds `size` bytes; false when the stream ends or fails first.
    bool receive_until(int fd, std::string& into, size_t size, std::chrono::milliseconds timeout) const {
        while (into.size() < size)
            if (receive(fd, into, timeout) <= 0) return false;
        return true;
    }

    bool send_all(int fd, std::string_view bytes) const {
        while (!bytes.empty()) {
            if (!wait(fd, POLLOUT, k_message_timeout)) return false;
            ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

private:
    int m_stop_fd;
};

// Closes `fd` with a TCP reset instead of a FIN.
void reset_connection(UniqueFd& fd) {
    linger abort{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    fd.reset();
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes a chunked body; nullopt when it is malformed or incomplete.
std::optional<std::string> decode_chunked(std::string_view encoded) {
    std::string decoded;
    while (true) {
        size_t line_end = encoded.find("\r\n");
        if (line_end == std::string_view::npos) return std::nullopt;
        std::string_view size_text = trim(encoded.substr(0, encoded.find_first_of(";\r")));
        if (size_text.empty()) return std::nullopt;
        size_t size = 0;
        for (char c : size_text) {
            int digit = hex_digit(c);
            if (digit < 0 || size > (k_max_body >> 4)) return std::nullopt;
            size = size * 16 + static_cast<size_t>(digit);
        }
        encoded.remove_prefix(line_end + 2);
        if (size == 0) return decoded;  // trailers, if any, are dropped
        if (encoded.size() < size + 2) return std::nullopt;
        decoded.append(encoded.substr(0, size));
        encoded.remove_prefix(size + 2);
    }
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 429:
            return "Too Many Requests";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        default:
            return "Status";
    }
}

// An answer the proxy makes up itself (429, 503, 501, 502), with distribution's error JSON.
std::string error_answer(std::string_view method, bool close_after, int status, std::string_view code,
                         std::string_view message, const Headers& extra) {
    nlohmann::json body = {{"errors", {{{"code", code}, {"message", message}, {"detail", nullptr}}}}};
    std::string bytes = body.dump();
    std::string answer = str_cat("HTTP/1.1 ", status, " ", reason_phrase(status), "\r\n",
                                 "Content-Type: application/json; charset=utf-8\r\n",
                                 "Docker-Distribution-Api-Version: registry/2.0\r\n");
    for (const auto& [name, value] : extra) answer += str_cat(name, ": ", value, "\r\n");
    answer += str_cat("Content-Length: ", bytes.size(), "\r\n");
    if (close_after) answer += "Connection: close\r\n";
    answer += "\r\n";
    if (method != "HEAD") answer += bytes;
    return answer;
}

}  // namespace

std::string_view fault_name(Fault fault) {
    switch (fault) {
        case Fault::status_429:
            return "status_429";
        case Fault::status_503:
            return "status_503";
        case Fault::immutable_tag:
            return "immutable_tag";
        case Fault::reset_mid_body:
            return "reset_mid_body";
        case Fault::truncate_body:
            return "truncate_body";
        case Fault::flip_byte:
            return "flip_byte";
        case Fault::stall:
            return "stall";
    }
    return "unknown";
}

struct FaultProxy::Request {
    std::string method;
    std::string target;
    Headers headers;
    std::string body;
    // HTTP/1.0 or "Connection: close": the connection ends after the answer.
    bool close_after = false;
};

struct FaultProxy::Response {
    // "HTTP/1.1 200 OK"
    std::string status_line;
    int status = 0;
    Headers headers;
    std::string body;
};

struct FaultProxy::Connection {
    std::thread thread;
    std::atomic<bool> done{false};
};

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(std::string upstream_host_port,
                                                      std::vector<FaultRule> rules) {
    size_t colon = upstream_host_port.rfind(':');
    std::uint64_t upstream_port = 0;
    if (colon == std::string::npos || !parse_uint64(upstream_host_port.substr(colon + 1), upstream_port) ||
        upstream_port == 0 || upstream_port > 65535)
        return fail(str_cat("fault proxy: upstream \"", upstream_host_port, "\" is not host:port"));
    std::string host = upstream_host_port.substr(0, colon);
    in_addr upstream_address{};
    if (host == "localhost") host = "127.0.0.1";
    if (::inet_pton(AF_INET, host.c_str(), &upstream_address) != 1)
        return fail(str_cat("fault proxy: upstream host \"", host, "\" is not an IPv4 address"));

    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener) return fail_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return fail_errno("bind 127.0.0.1:0");
    if (::listen(listener.get(), 64) != 0) return fail_errno("listen");
    socklen_t length = sizeof address;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return fail_errno("getsockname");
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_errno("pipe2");
    return std::unique_ptr<FaultProxy>(
        new FaultProxy(std::move(listener), ntohs(address.sin_port), upstream_address.s_addr,
                       static_cast<std::uint16_t>(upstream_port), std::move(rules), UniqueFd(pipe_fds[0]),
                       UniqueFd(pipe_fds[1])));
}

FaultProxy::FaultProxy(UniqueFd listener, std::uint16_t port, std::uint32_t upstream_address,
                       std::uint16_t upstream_port, std::vector<FaultRule> rules, UniqueFd stop_read,
                       UniqueFd stop_write)
    : m_listener(std::move(listener)),
      m_port(port),
      m_upstream_address(upstream_address),
      m_upstream_port(upstream_port),
      m_stop_read(std::move(stop_read)),
      m_stop_write(std::move(stop_write)),
      m_rules(std::move(rules)),
      m_rule_hits(m_rules.size(), 0),
      m_rule_first_hit(m_rules.size()) {
    m_accept_thread = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
    m_stop_write.reset();  // every poll() of every thread sees the pipe hang up
    if (m_accept_thread.joinable()) m_accept_thread.join();
    // The accept thread has ended, so the list no longer grows.
    for (Connection& connection : m_connections)
        if (connection.thread.joinable()) connection.thread.join();
}

std::string FaultProxy::host_port() const {
    return str_cat("127.0.0.1:", m_port);
}

void FaultProxy::set_rules(std::vector<FaultRule> rules) {
    std::lock_guard lock(m_mutex);
    m_rules = std::move(rules);
    m_rule_hits.assign(m_rules.size(), 0);
    m_rule_first_hit.assign(m_rules.size(), {});
}

int FaultProxy::faults_injected() const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_injected.size());
}

int FaultProxy::faults_injected(Fault fault) const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(std::count(m_injected.begin(), m_injected.end(), fault));
}

int FaultProxy::requests_seen() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
}

std::vector<std::string> FaultProxy::log() const {
    std::lock_guard lock(m_mutex);
    return m_log;
}

std::shared_ptr<const FaultRule> FaultProxy::take_rule(const Request& request) {
    std::lock_guard lock(m_mutex);
    ++m_requests;
    for (size_t i = 0; i < m_rules.size(); ++i) {
        const FaultRule& rule = m_rules[i];
        if (!rule.method.empty() && rule.method != request.method) continue;
        if (!rule.path_contains.empty() && request.target.find(rule.path_contains) == std::string::npos)
            continue;
        auto now = std::chrono::steady_clock::now();
        if (rule.lasts.count() > 0) {
            if (m_rule_hits[i] > 0 && now - m_rule_first_hit[i] >= rule.lasts) continue;
        } else if (rule.times >= 0 && m_rule_hits[i] >= rule.times) {
            continue;
        }
        if (m_rule_hits[i]++ == 0) m_rule_first_hit[i] = now;
        m_injected.push_back(rule.fault);
        return std::make_shared<const FaultRule>(rule);
    }
    return nullptr;
}

void FaultProxy::record(std::string line) {
    std::lock_guard lock(m_mutex);
    m_log.push_back(std::move(line));
}

void FaultProxy::accept_loop() {
    Io io(m_stop_read.get());
    while (io.wait(m_listener.get(), POLLIN, k_no_timeout)) {
        UniqueFd client(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) continue;
        std::lock_guard lock(m_connections_mutex);
        std::erase_if(m_connections, [](Connection& connection) {
            if (!connection.done) return false;
            connection.thread.join();
            return true;
        });
        Connection& connection = m_connections.emplace_back();
        connection.thread = std::thread([this, &connection, fd = client.release()] {
            serve(fd);
            connection.done = true;
        });
    }
}

void FaultProxy::serve(int client_fd) {
    UniqueFd client(client_fd);
    std::string received;  // bytes from the client not yet consumed: a keep-alive client may send ahead
    while (serve_request(client, received)) {
    }
}

bool FaultProxy::serve_request(UniqueFd& client, std::string& received) {
    Io io(m_stop_read.get());
    size_t head_end;
    std::chrono::milliseconds timeout = received.empty() ? k_no_timeout : k_message_timeout;
    while ((head_end = received.find("\r\n\r\n")) == std::string::npos)
        if (received.size() > k_max_head || io.receive(client.get(), received, timeout) <= 0) return false;
    Request request;
    std::vector<std::string> lines = split(std::string_view(received).substr(0, head_end), '\n');
    std::vector<std::string> request_line = split(trim(lines[0]), ' ');
    if (request_line.size() != 3) return false;
    request.method = request_line[0];
    request.target = request_line[1];
    request.headers = parse_headers(lines);
    received.erase(0, head_end + 4);
    std::string connection = to_lower(find_header(request.headers, "Connection").value_or(""));
    request.close_after = request_line[2] == "HTTP/1.0" || connection.find("close") != std::string::npos;
    std::string summary = str_cat(request.method, " ", request.target, " -> ");

    if (find_header(request.headers, "Transfer-Encoding")) {
        record(summary + "501 (chunked request bodies are not supported)");
        io.send_all(client.get(), error_answer(request.method, true, 501, "UNSUPPORTED",
                                               "the fault proxy does not take chunked request bodies", {}));
        return false;
    }
    std::uint64_t content_length = 0;
    if (auto length = find_header(request.headers, "Content-Length");
        length && (!parse_uint64(*length, content_length) || content_length > k_max_body))
        return false;
    std::shared_ptr<const FaultRule> rule = take_rule(request);
    if (auto expect = find_header(request.headers, "Expect"); expect && to_lower(*expect) == "100-continue")
        if (!io.send_all(client.get(), "HTTP/1.1 100 Continue\r\n\r\n")) return false;

    // Faults on the way in: the request body is cut off and never forwarded.
    if (rule && content_length > 0 && (rule->fault == Fault::reset_mid_body || rule->fault == Fault::stall)) {
        io.receive_until(client.get(), received, content_length / 2, k_message_timeout);
        if (rule->fault == Fault::reset_mid_body) {
            record(summary + "reset mid request body (injected reset_mid_body)");
            reset_connection(client);
        } else {
            record(summary + "stalled mid request body (injected stall)");
            io.wait(-1, 0, rule->stall);
        }
        return false;
    }
    if (!io.receive_until(client.get(), received, content_length, k_message_timeout)) return false;
    request.body = received.substr(0, content_length);
    received.erase(0, content_length);

    if (rule && (rule->fault == Fault::status_429 || rule->fault == Fault::status_503)) {
        bool too_many = rule->fault == Fault::status_429;
        int status = too_many ? 429 : 503;
        record(str_cat(summary, status, " (injected ", fault_name(rule->fault), ")"));
        return io.send_all(client.get(),
                           error_answer(request.method, request.close_after, status,
                                        too_many ? "TOOMANYREQUESTS" : "UNAVAILABLE",
                                        too_many ? "too many requests (injected by the kiln fault proxy)"
                                                 : "service unavailable (injected by the kiln fault proxy)",
                                        rule->retry_after_seconds > 0
                                            ? Headers{{"Retry-After", str_cat(rule->retry_after_seconds)}}
                                            : Headers{})) &&
               !request.close_after;
    }
    if (rule && rule->fault == Fault::immutable_tag) {
        record(str_cat(summary, 400, " (injected ", fault_name(rule->fault), ")"));
        return io.send_all(client.get(),
                           error_answer(request.method, request.close_after, 400, "TAG_INVALID",
                                        "The image tag '1' already exists in the repository and cannot be "
                                        "overwritten because the repository is immutable.",
                                        Headers{})) &&
               !request.close_after;
    }
    bool flip_response = rule && rule->fault == Fault::flip_byte;
    if (flip_response && !request.body.empty()) {
        request.body[request.body.size() / 2] ^= 0x5a;
        flip_response = false;
    }

    Result<Response> forwarded = forward(request);
    if (!forwarded) {
        record(str_cat(summary, "502 (", forwarded.error().message(), ")"));
        return io.send_all(client.get(), error_answer(request.method, request.close_after, 502, "UNAVAILABLE",
                                                      forwarded.error().message(), {})) &&
               !request.close_after;
    }
    Response& response = *forwarded;
    std::string head = response_head(request, response);
    std::string injected = rule ? str_cat(" (injected ", fault_name(rule->fault), ")") : "";
    if (rule && (rule->fault == Fault::reset_mid_body || rule->fault == Fault::truncate_body ||
                 rule->fault == Fault::stall)) {
        // The start of an answer that is never finished; nothing at all when there is no body to cut.
        if (!response.body.empty() && io.send_all(client.get(), head))
            io.send_all(client.get(), std::string_view(response.body).substr(0, response.body.size() / 2));
        if (rule->fault == Fault::reset_mid_body) {
            record(str_cat(summary, response.status, " reset mid body", injected));
            reset_connection(client);
        } else if (rule->fault == Fault::truncate_body) {
            record(str_cat(summary, response.status, " truncated", injected));
            ::shutdown(client.get(), SHUT_WR);
        } else {
            record(str_cat(summary, response.status, " stalled", injected));
            io.wait(-1, 0, rule->stall);
        }
        return false;
    }
    if (flip_response && !response.body.empty()) response.body[response.body.size() / 2] ^= 0x5a;
    record(str_cat(summary, response.status, injected));
    return io.send_all(client.get(), head) && io.send_all(client.get(), response.body) &&
           !request.close_after;
}

std::string FaultProxy::response_head(const Request& request, Response& response) {
    bool head_request = request.method == "HEAD";
    bool bodiless = head_request || response.status == 204 || response.status == 304;
    std::string head = response.status_line + "\r\n";
    for (const auto& [name, value] : response.headers)
        if (!is_hop_by_hop(name)) head += str_cat(name, ": ", value, "\r\n");
    if (head_request) {
        // A HEAD answer announces the length of the body it does not carry.
        if (auto length = find_header(response.headers, "Content-Length"))
            head += str_cat("Content-Length: ", *length, "\r\n");
    } else if (!bodiless) {
        head += str_cat("Content-Length: ", response.body.size(), "\r\n");
    }
    if (request.close_after) head += "Connection: close\r\n";
    if (bodiless) response.body.clear();
    return head + "\r\n";
}

Result<FaultProxy::Response> FaultProxy::forward(const Request& request) const {
    Io io(m_stop_read.get());
    UniqueFd upstream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!upstream) return fail_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = m_upstream_address;
    address.sin_port = htons(m_upstream_port);
    if (::connect(upstream.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return fail_errno(str_cat("connect to upstream port ", m_upstream_port));

    // The client's Host stays, so that the registry's Locations lead back through the proxy.
    std::string head = str_cat(request.method, " ", request.target, " HTTP/1.1\r\n");
    for (const auto& [name, value] : request.headers)
        if (!is_hop_by_hop(name)) head += str_cat(name, ": ", value, "\r\n");
    if (find_header(request.headers, "Content-Length") || !request.body.empty())
        head += str_cat("Content-Length: ", request.body.size(), "\r\n");
    head += "Connection: close\r\n\r\n";
    if (!io.send_all(upstream.get(), head) || !io.send_all(upstream.get(), request.body))
        return fail("sending the request upstream failed");

    std::string received;
    while (true) {
        ssize_t n = io.receive(upstream.get(), received, k_message_timeout);
        if (n == 0) break;
        if (n < 0) return fail("the upstream answer did not end (timeout, reset or proxy stopping)");
    }
    Response response;
    while (true) {
        size_t head_end = received.find("\r\n\r\n");
        if (head_end == std::string::npos) return fail("the upstream answer has no complete head");
        std::vector<std::string> lines = split(std::string_view(received).substr(0, head_end), '\n');
        response.status_line = std::string(trim(lines[0]));
        std::uint64_t status = 0;
        if (!response.status_line.starts_with("HTTP/") || response.status_line.size() < 12 ||
            !parse_uint64(response.status_line.substr(9, 3), status))
            return fail(str_cat("malformed upstream status line \"", response.status_line, "\""));
        response.status = static_cast<int>(status);
        response.headers = parse_headers(lines);
        received.erase(0, head_end + 4);
        if (response.status >= 200) break;  // 1xx answers are interim
    }
    if (auto encoding = find_header(response.headers, "Transfer-Encoding");
        encoding && to_lower(*encoding).find("chunked") != std::string::npos) {
        std::optional<std::string> decoded = decode_chunked(received);
        if (!decoded) return fail("malformed chunked upstream body");
        response.body = std::move(*decoded);
    } else {
        std::uint64_t length = 0;
        if (auto declared = find_header(response.headers, "Content-Length");
            declared && parse_uint64(*declared, length) && request.method != "HEAD") {
            if (received.size() < length) return fail("the upstream body is shorter than its Content-Length");
            received.resize(length);
        }
        response.body = request.method == "HEAD" ? std::string() : std::move(received);
    }
    return response;
}

}  // namespace kiln::test
