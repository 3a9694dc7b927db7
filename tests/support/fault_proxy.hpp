#pragma once
// A fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1, put between kiln and a plain-HTTP test registry. It
// forwards each request on a fresh upstream connection, keeping the client's Host header so that the
// registry's upload Locations point back at the proxy, and answers the client over keep-alive connections, a
// thread per connection (kiln's transfers run in parallel). Rules make the first N matching requests fail in
// one way each: a 429 or 503, a connection reset, a truncated or corrupted body, a stall.

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln::test {

enum class Fault {
    // Answer at once, without forwarding, with the status, `Retry-After: N` and a distribution error JSON
    // (TOOMANYREQUESTS / UNAVAILABLE).
    status_429,
    status_503,
    // A request with a body: read half of it, then reset the connection (RST) without forwarding. Otherwise
    // forward, send the response's headers and half its body, then reset (at once when the body is empty).
    reset_mid_body,
    // Forward, then send the headers with the full Content-Length and only half the body, and close normally
    // (at
    // once when the body is empty).
    truncate_body,
    // Forward with one byte in the middle of the request body flipped, or, for a request without a body, with
    // one
    // byte in the middle of the response body flipped. The framing stays intact.
    flip_byte,
    // As reset_mid_body, but instead of the reset send nothing more for the rule's `stall` (or until the
    // proxy is
    // destroyed), then close.
    stall,
    // Answer at once, without forwarding, as ECR answers a manifest put under an immutable tag that exists:
    // 400 TAG_INVALID, "… cannot be overwritten because the repository is immutable."
    immutable_tag,
};

// "status_429", "reset_mid_body", …
std::string_view fault_name(Fault fault);

struct FaultRule {
    Fault fault;
    // The request method ("GET", "PATCH"); empty for any.
    std::string method;
    // A substring of the request target ("/blobs/sha256:"); empty for any.
    std::string path_contains;
    // How many matching requests fail, counted from the first; -1 for every one. A match counts as a fault even
    // where there was nothing to cut (a HEAD answer has no body), so aim rules at requests the fault fits.
    int times = 1;
    // The Retry-After of status_429 and status_503; 0 sends none.
    int retry_after_seconds = 1;
    // Non-zero: an outage. Every matching request fails, `times` aside, from the first match until this long
    // after it (a registry's rolling restart).
    std::chrono::milliseconds lasts{0};
    // How long a stall lasts.
    std::chrono::milliseconds stall{30000};
};

class FaultProxy {
public:
    // Listens on a free port of 127.0.0.1 and forwards to `upstream_host_port` ("127.0.0.1:5000", plain
    // HTTP). A request matching several rules gets the first one that has failures left.
    static Result<std::unique_ptr<FaultProxy>> start(std::string upstream_host_port,
                                                     std::vector<FaultRule> rules = {});
    // Stops every thread, stalls included, and closes every connection.
    ~FaultProxy();
    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;

    std::uint16_t port() const { return m_port; }
    // "127.0.0.1:<port>": the registry part of references that go through the proxy.
    std::string host_port() const;

    // Replaces the rules; the new ones start with all their failures left.
    void set_rules(std::vector<FaultRule> rules);
    // Faults injected since start, over all rules.
    int faults_injected() const;
    // Faults injected since start by kind.
    int faults_injected(Fault fault) const;
    // Requests received since start, faulted or not.
    int requests_seen() const;
    // One line per request, in order: "GET /v2/team/app/manifests/v1 -> 200",
    // "GET /v2/team/app/blobs/sha256:… -> 503 (injected status_503)".
    std::vector<std::string> log() const;

private:
    struct Request;
    struct Response;
    struct Connection;
    // The rule a request is subject to (its failure counted), or null.
    std::shared_ptr<const FaultRule> take_rule(const Request& request);

    FaultProxy(UniqueFd listener, std::uint16_t port, std::uint32_t upstream_address,
               std::uint16_t upstream_port, std::vector<FaultRule> rules, UniqueFd stop_read,
               UniqueFd stop_write);
    void accept_loop();
    void serve(int client_fd);
    // Answers one request of a keep-alive connection; false when the connection is to end.
    bool serve_request(UniqueFd& client, std::string& received);
    // The head of the answer to the client; empties the body of a HEAD, 204 or 304 answer.
    static std::string response_head(const Request& request, Response& response);
    Result<Response> forward(const Request& request) const;
    void record(std::string line);

    UniqueFd m_listener;
    std::uint16_t m_port;
    std::uint32_t m_upstream_address;  // network byte order
    std::uint16_t m_upstream_port;
    UniqueFd m_stop_read;
    UniqueFd m_stop_write;

    mutable std::mutex m_mutex;
    std::vector<FaultRule> m_rules;
    std::vector<int> m_rule_hits;
    std::vector<std::chrono::steady_clock::time_point> m_rule_first_hit;
    std::vector<Fault> m_injected;
    int m_requests = 0;
    std::vector<std::string> m_log;

    std::mutex m_connections_mutex;
    std::list<Connection> m_connections;
    std::thread m_accept_thread;
};

}  // namespace kiln::test
