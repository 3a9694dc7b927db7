#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for tests: one thread, one connection at a time, a handler per request.
// It lets tests play the hostile server (oversized documents, stalls, redirects) that a real registry will not.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln::test {

struct LocalRequest {
    std::string method;
    std::string target;  // path and query, as sent
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The first value of header `name` (case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    // The path without the query.
    std::string path() const;
    // Every value of query parameter `name`, percent-decoded.
    std::vector<std::string> query(std::string_view name) const;
    // Every value of field `name` of an application/x-www-form-urlencoded body, decoded ('+' is a space).
    std::vector<std::string> form(std::string_view name) const;
};

struct LocalResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // When set, the server sends a Content-Length of this many bytes instead of the body's size (to lie).
    std::optional<std::uint64_t> declared_length;
    // After the headers and `body`, keep the connection open and silent this long (a stalled server).
    std::chrono::milliseconds stall_after_body{0};
    // Send `body` a byte at a time, this long apart (a server that trickles, so that a byte always arrives).
    std::chrono::milliseconds trickle{0};
    // After `body`, send filler without end, until the client hangs up or the server stops: with no
    // Content-Length (the body ends when the connection does), or chunked.
    enum class Endless { no, close_delimited, chunked };
    Endless endless = Endless::no;
};

using LocalHandler = std::function<LocalResponse(const LocalRequest&)>;

class LocalHttpServer {
public:
    // Listens on `ipv4` (127.0.0.1 unless a test needs a host address that is not loopback) on a free port and
    // serves `handler` on a thread until destroyed.
    static Result<std::unique_ptr<LocalHttpServer>> start(LocalHandler handler, const std::string& ipv4 = "127.0.0.1");
    ~LocalHttpServer();
    LocalHttpServer(const LocalHttpServer&) = delete;
    LocalHttpServer& operator=(const LocalHttpServer&) = delete;

    std::uint16_t port() const { return m_port; }
    // "<address>:<port>".
    std::string host_port() const;
    // "http://<address>:<port><path>".
    std::string url(std::string_view path) const;
    // Every request served so far, in order.
    std::vector<LocalRequest> requests() const;

private:
    LocalHttpServer(UniqueFd listener, std::uint16_t port, LocalHandler handler, UniqueFd stop_read,
                    UniqueFd stop_write);
    void serve();
    void serve_connection(int fd);
    // Waits until `fd` is readable or the server stops; false when stopping or after `timeout`.
    bool wait_readable(int fd, std::chrono::milliseconds timeout) const;
    bool stopping() const;
    void send_body(int fd, const LocalResponse& response) const;

    UniqueFd m_listener;
    std::uint16_t m_port;
    std::string m_address = "127.0.0.1";
    LocalHandler m_handler;
    UniqueFd m_stop_read;
    UniqueFd m_stop_write;
    mutable std::mutex m_mutex;
    std::vector<LocalRequest> m_requests;
    std::thread m_thread;
};

// Percent-decodes a URL component ('+' stays '+').
std::string percent_decode(std::string_view text);

// Decodes one name or value of an application/x-www-form-urlencoded body: '+' is a space, then percent-decoding.
std::string form_decode(std::string_view text);

}  // namespace kiln::test
