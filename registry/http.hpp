#pragma once
// HTTP over libcurl for the registry client. Bodies stream through Reader/Writer, every wait is bounded, TLS is
// verified against the system CA bundle unless a registry is explicitly exempted, and redirects are followed
// here rather than inside curl, so that the Authorization header never travels to another host.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/stream.hpp"

namespace kiln {

enum class TlsVerification { verify, skip };

// What to do with a 3xx answer: hand it back, or follow it (blob GETs: registries redirect to their storage).
enum class Redirects { report, follow };

// Every wait is bounded; a build never hangs on a silent server.
struct HttpTimeouts {
    // TCP connect plus TLS handshake.
    std::chrono::milliseconds connect{30000};
    // A transfer that moves fewer than `min_rate` bytes a second, either way, averaged over the last `stall`, is
    // abandoned (retryably): neither a silent server nor one that trickles a byte now and then can hang a
    // build, while a slow but live one can still deliver a large layer.
    std::chrono::milliseconds stall{60000};
    std::uint64_t min_rate = 1024;
    // The longest one exchange may take, however fast it moves (zero: no bound). Past it the transfer is
    // abandoned for good: a retry would take as long.
    std::chrono::milliseconds deadline{std::chrono::hours(1)};
};

// A TLS client certificate (mTLS): PEM files.
struct ClientCertificate {
    std::string certificate_path;
    std::string key_path;
};

// Per client: one per registry that needs TLS settings of its own, one shared by the others.
struct HttpClientOptions {
    TlsVerification tls_verification = TlsVerification::verify;
    // PEM certificates trusted in addition to the system's CA bundle (--registry-certificate).
    std::string extra_ca_pem;
    std::optional<ClientCertificate> client_certificate;
    std::string user_agent = "kiln";
    HttpTimeouts timeouts;
};

// Header fields in arrival order; names compare case-insensitively.
class HttpHeaders {
public:
    // Appends a field; repeated names keep every value.
    void add(std::string name, std::string value);
    // The first value of `name`, if any.
    std::optional<std::string> get(std::string_view name) const;
    // Every value of `name` (WWW-Authenticate may come several times).
    std::vector<std::string> get_all(std::string_view name) const;
    // Every field, in order.
    const std::vector<std::pair<std::string, std::string>>& entries() const { return m_entries; }

private:
    std::vector<std::pair<std::string, std::string>> m_entries;
};

struct HttpRequest {
    // GET, HEAD, DELETE carry no body; PUT, POST, PATCH always send Content-Length.
    std::string method = "GET";
    std::string url;
    HttpHeaders headers;
    // The Authorization value. Sent only to the origin (scheme, host, port) of `url`; a redirect elsewhere drops
    // it. Never logged.
    std::string authorization;
    // The body: `body_size` bytes read from `body` (not owned), or none when null. Content-Length is always sent.
    Reader* body = nullptr;
    std::uint64_t body_size = 0;
    // Followed only for requests without a body, at most 10 times, to http(s) URLs only.
    Redirects redirects = Redirects::report;
    // Bound on the whole exchange for small documents; zero leaves only the connect and low-speed limits (layers).
    std::chrono::milliseconds timeout{0};
};

// One HTTP answer, whatever its status.
struct HttpResponse {
    long status = 0;
    HttpHeaders headers;
    // The URL that answered, after any redirects.
    std::string url;
    // A captured 2xx body (HttpClient::fetch), or the start of a non-2xx body (at most 64 KiB) for error messages.
    std::string body;

    // A 2xx status.
    bool ok() const { return status >= 200 && status < 300; }
};

// Thread-safe: each call uses its own curl handle from a pool that keeps connections alive between calls.
class HttpClient {
public:
    explicit HttpClient(HttpClientOptions options = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Sends `request` and streams a 2xx body into `sink`. Any HTTP status is a response, not an error; transport
    // failures are errors, retryable when trying again may help. If it fails, `sink` holds a partial body.
    Result<HttpResponse> send(const HttpRequest& request, Writer& sink);
    // As send(), capturing a 2xx body into the response; a body over `body_limit` bytes is refused unread.
    Result<HttpResponse> fetch(const HttpRequest& request, size_t body_limit);

    // The options the client was made with.
    const HttpClientOptions& options() const { return m_options; }

private:
    class HandlePool;
    Result<HttpResponse> perform(const HttpRequest& request, Writer* sink, size_t body_limit);
    Result<HttpResponse> transfer(const HttpRequest& request, const std::string& url, bool send_authorization,
                                  Writer* sink, size_t body_limit);

    HttpClientOptions m_options;
    // The system bundle plus extra_ca_pem, when there is an extra CA.
    std::string m_ca_bundle;
    std::string m_no_proxy;
    std::unique_ptr<HandlePool> m_handles;
};

// The CA certificates curl trusts when it is given none: its built-in bundle file and directory (CURLINFO_CAINFO,
// CURLINFO_CAPATH), each empty if it has none. Asked of curl once.
struct SystemTrust {
    std::string file;
    std::string directory;
};
const SystemTrust& system_trust();

// "https://reg.io:443": requests to the same origin may share credentials.
Result<std::string> url_origin(std::string_view url);
// A Location header value resolved against the URL that sent it; only http and https results are accepted.
Result<std::string> resolve_url(std::string_view base, std::string_view reference);
// `url` with `name=value` (percent-encoded) added to its query, whether or not it already has one.
Result<std::string> append_query(std::string_view url, std::string_view name, std::string_view value);

}  // namespace kiln
