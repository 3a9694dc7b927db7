#include "tests/support/local_http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/strings.hpp"

namespace kiln::test {
namespace {

constexpr size_t k_max_head = 1 << 20;
constexpr size_t k_max_body = 64 << 20;
constexpr std::chrono::milliseconds k_read_timeout{5000};

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 307: return "Temporary Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 500: return "Internal Server Error";
        default: return "Status";
    }
}

// False when the client went away: nothing to do then for a test server but stop sending.
bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string percent_decode(std::string_view text) {
    std::string decoded;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            decoded += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            decoded += text[i];
        }
    }
    return decoded;
}

std::string form_decode(std::string_view text) {
    std::string spaced(text);
    for (char& c : spaced)
        if (c == '+') c = ' ';
    return percent_decode(spaced);
}

std::optional<std::string> LocalRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (to_lower(key) == to_lower(name)) return value;
    return std::nullopt;
}

std::string LocalRequest::path() const { return target.substr(0, target.find('?')); }

std::vector<std::string> LocalRequest::query(std::string_view name) const {
    std::vector<std::string> values;
    size_t question = target.find('?');
    if (question == std::string::npos) return values;
    for (const std::string& pair : split(std::string_view(target).substr(question + 1), '&')) {
        size_t equals = pair.find('=');
        std::string key = percent_decode(pair.substr(0, equals));
        if (key == name) values.push_back(equals == std::string::npos ? "" : percent_decode(pair.substr(equals + 1)));
    }
    return values;
}

std::vector<std::string> LocalRequest::form(std::string_view name) const {
    std::vector<std::string> values;
    if (body.empty()) return values;
    for (const std::string& pair : split(body, '&')) {
        size_t equals = pair.find('=');
        if (form_decode(pair.substr(0, equals)) == name)
            values.push_back(equals == std::string::npos ? "" : form_decode(pair.substr(equals + 1)));
    }
    return values;
}

Result<std::unique_ptr<LocalHttpServer>> LocalHttpServer::start(LocalHandler handler, const std::string& ipv4) {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener) return fail_errno("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    if (::inet_pton(AF_INET, ipv4.c_str(), &address.sin_addr) != 1) return fail(str_cat("not an IPv4 address: ", ipv4));
    address.sin_port = 0;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return fail_errno(str_cat("bind ", ipv4, ":0"));
    if (::listen(listener.get(), 16) != 0) return fail_errno("listen");
    socklen_t length = sizeof address;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        return fail_errno("getsockname");
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_errno("pipe2");
    auto server = std::unique_ptr<LocalHttpServer>(new LocalHttpServer(std::move(listener), ntohs(address.sin_port),
                                                                       std::move(handler), UniqueFd(pipe_fds[0]),
                                                                       UniqueFd(pipe_fds[1])));
    server->m_address = ipv4;
    return server;
}

LocalHttpServer::LocalHttpServer(UniqueFd listener, std::uint16_t port, LocalHandler handler, UniqueFd stop_read,
                                 UniqueFd stop_write)
    : m_listener(std::move(listener)), m_port(port), m_handler(std::move(handler)),
      m_stop_read(std::move(stop_read)), m_stop_write(std::move(stop_write)) {
    m_thread = std::thread([this] { serve(); });
}

LocalHttpServer::~LocalHttpServer() {
    m_stop_write.reset();  // every poll() in the thread sees the pipe hang up
    if (m_thread.joinable()) m_thread.join();
}

std::string LocalHttpServer::host_port() const { return str_cat(m_address, ":", m_port); }

std::string LocalHttpServer::url(std::string_view path) const { return str_cat("http://", host_port(), path); }

std::vector<LocalRequest> LocalHttpServer::requests() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
}

bool LocalHttpServer::wait_readable(int fd, std::chrono::milliseconds timeout) const {
    pollfd fds[2] = {{m_stop_read.get(), POLLIN, 0}, {fd, POLLIN, 0}};
    int count = fd >= 0 ? 2 : 1;
    while (true) {
        int rc = ::poll(fds, static_cast<nfds_t>(count), static_cast<int>(timeout.count()));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0 || fds[0].revents) return false;
        return true;
    }
}

void LocalHttpServer::serve() {
    while (true) {
        if (!wait_readable(m_listener.get(), std::chrono::milliseconds(-1))) return;
        UniqueFd connection(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (connection) serve_connection(connection.get());
    }
}

void LocalHttpServer::serve_connection(int fd) {
    std::string received;
    char buffer[65536];
    auto receive_more = [&]() {
        if (!wait_readable(fd, k_read_timeout)) return false;
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) return false;
        received.append(buffer, static_cast<size_t>(n));
        return true;
    };
    size_t head_end;
    while ((head_end = received.find("\r\n\r\n")) == std::string::npos) {
        // A TLS ClientHello (record type 22): this server speaks plain HTTP only, so hang up at once.
        if (!received.empty() && received[0] == '\x16') return;
        if (received.size() > k_max_head || !receive_more()) return;
    }
    LocalRequest request;
    std::vector<std::string> lines = split(std::string_view(received).substr(0, head_end), '\n');
    std::vector<std::string> request_line = split(trim(lines[0]), ' ');
    if (request_line.size() < 2) return;
    request.method = request_line[0];
    request.target = request_line[1];
    for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        request.headers.emplace_back(std::string(trim(lines[i].substr(0, colon))),
                                     std::string(trim(lines[i].substr(colon + 1))));
    }
    std::uint64_t body_length = 0;
    if (auto length = request.header("Content-Length"); length && !parse_uint64(*length, body_length)) return;
    if (body_length > k_max_body) return;
    if (auto expect = request.header("Expect"); expect && to_lower(*expect) == "100-continue")
        send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    received.erase(0, head_end + 4);
    while (received.size() < body_length)
        if (!receive_more()) return;
    request.body = received.substr(0, body_length);

    LocalResponse response = m_handler(request);
    bool head_only = request.method == "HEAD";
    {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(std::move(request));
    }
    std::string head = str_cat("HTTP/1.1 ", response.status, " ", reason_phrase(response.status), "\r\n");
    for (const auto& [name, value] : response.headers) head += str_cat(name, ": ", value, "\r\n");
    if (response.endless == LocalResponse::Endless::chunked)
        head += "Transfer-Encoding: chunked\r\n";
    else if (response.endless == LocalResponse::Endless::no)
        head += str_cat("Content-Length: ", response.declared_length.value_or(response.body.size()), "\r\n");
    head += "Connection: close\r\n\r\n";
    send_all(fd, head);
    if (!head_only) send_body(fd, response);
    if (response.stall_after_body.count() > 0) wait_readable(-1, response.stall_after_body);
}

bool LocalHttpServer::stopping() const {
    pollfd stop{m_stop_read.get(), POLLIN, 0};
    return ::poll(&stop, 1, 0) > 0;
}

void LocalHttpServer::send_body(int fd, const LocalResponse& response) const {
    bool chunked = response.endless == LocalResponse::Endless::chunked;
    auto send_piece = [&](std::string_view piece) {
        if (piece.empty()) return true;
        if (!chunked) return send_all(fd, piece);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        return send_all(fd, size) && send_all(fd, piece) && send_all(fd, "\r\n");
    };
    if (response.trickle.count() > 0) {
        for (char byte : response.body) {
            if (!send_piece(std::string_view(&byte, 1))) return;
            if (wait_readable(-1, response.trickle) || stopping()) return;
        }
    } else if (!send_piece(response.body)) {
        return;
    }
    if (response.endless == LocalResponse::Endless::no) return;
    const std::string filler(1 << 20, 'x');
    while (!stopping() && send_piece(filler)) {
    }
}

}  // namespace kiln::test
