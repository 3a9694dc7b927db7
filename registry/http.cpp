#include "registry/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr size_t k_error_body_limit = 64 << 10;
constexpr size_t k_header_limit = 1 << 20;
constexpr int k_max_redirects = 10;

struct CurlEasyDeleter {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlListDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

const SystemTrust& system_trust() {
    static const SystemTrust trust = [] {
        global_init();
        SystemTrust found;
        CurlEasy handle(curl_easy_init());
        if (!handle) return found;
        char* text = nullptr;
        if (curl_easy_getinfo(handle.get(), CURLINFO_CAINFO, &text) == CURLE_OK && text) found.file = text;
        text = nullptr;
        if (curl_easy_getinfo(handle.get(), CURLINFO_CAPATH, &text) == CURLE_OK && text) found.directory = text;
        return found;
    }();
    return trust;
}

namespace {

// Loopback never goes through a proxy (as in Go's net/http): tests and local registries must stay on this host.
std::string no_proxy_list() {
    std::string list = "localhost,127.0.0.0/8,::1";
    for (const char* name : {"NO_PROXY", "no_proxy"})
        if (const char* value = std::getenv(name); value && *value) return str_cat(value, ",", list);
    return list;
}

// What one curl transfer collects; the callbacks below fill it.
struct Transfer {
    Writer* sink = nullptr;
    size_t body_limit = 0;
    // False for HEAD: its Content-Length describes a body that never comes.
    bool expects_body = true;
    long status = 0;
    HttpHeaders headers;
    size_t header_bytes = 0;
    std::string body;
    bool error_body_truncated = false;
    bool over_limit = false;
    bool headers_too_large = false;
    std::optional<Error> sink_error;
    Reader* upload = nullptr;
    std::uint64_t upload_size = 0;
    std::uint64_t uploaded = 0;
    std::optional<Error> upload_error;
    // Rate checking: how many bytes had moved, either way, at moments about a second apart over the last
    // stall window (oldest first; the first one at least a window old once the transfer is that old).
    std::chrono::milliseconds stall_limit{0};
    std::uint64_t min_rate = 0;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples;
    bool stalled = false;
    std::uint64_t moved_in_window = 0;

    bool success_status() const { return status >= 200 && status < 300; }
};

// curl calls this about once a second even when nothing moves: a transfer that moved less than the minimum
// rate over the last stall window is aborted. (curl's own low-speed limit averages over several seconds, so a
// burst followed by silence took far longer than the limit to notice; and a no-byte limit alone lets a server
// that sends a byte every few seconds hold a build forever.)
int on_progress(void* user, curl_off_t, curl_off_t downloaded, curl_off_t, curl_off_t uploaded) {
    auto& transfer = *static_cast<Transfer*>(user);
    auto now = std::chrono::steady_clock::now();
    auto moved = static_cast<std::uint64_t>(downloaded) + static_cast<std::uint64_t>(uploaded);
    auto& samples = transfer.samples;
    if (samples.empty() || now - samples.back().first >= std::chrono::seconds(1)) samples.emplace_back(now, moved);
    // Keep one sample at least a window old, the newest such.
    while (samples.size() >= 2 && now - samples[1].first >= transfer.stall_limit) samples.pop_front();
    auto [oldest_time, oldest_moved] = samples.front();
    auto span = now - oldest_time;
    if (span < transfer.stall_limit) return 0;
    double seconds = std::chrono::duration<double>(span).count();
    std::uint64_t moved_since = moved - oldest_moved;
    if (static_cast<double>(moved_since) >= static_cast<double>(transfer.min_rate) * seconds) return 0;
    transfer.stalled = true;
    transfer.moved_in_window = moved_since;
    return 1;
}

size_t on_header(char* buffer, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    std::string_view line(buffer, size * count);
    transfer.header_bytes += line.size();
    if (transfer.header_bytes > k_header_limit) {
        transfer.headers_too_large = true;
        return 0;
    }
    if (line.starts_with("HTTP/")) {
        // A new response (after 1xx, or a proxy's CONNECT answer): only the last one counts.
        transfer.headers = HttpHeaders();
        std::vector<std::string> parts = split(trim(line), ' ');
        std::uint64_t status = 0;
        transfer.status = parts.size() >= 2 && parse_uint64(parts[1], status) ? static_cast<long>(status) : 0;
        return line.size();
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return line.size();
    std::string name(trim(line.substr(0, colon)));
    std::string value(trim(line.substr(colon + 1)));
    if (transfer.expects_body && transfer.success_status() && !transfer.sink && to_lower(name) == "content-length") {
        std::uint64_t length = 0;
        if (parse_uint64(value, length) && length > transfer.body_limit) {
            transfer.over_limit = true;
            return 0;
        }
    }
    transfer.headers.add(std::move(name), std::move(value));
    return line.size();
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    size_t length = size * count;
    if (!transfer.success_status()) {
        // Error bodies are only for messages: keep the start, stop reading a hostile endless one.
        size_t room = k_error_body_limit - transfer.body.size();
        transfer.body.append(data, std::min(room, length));
        if (length > room) {
            transfer.error_body_truncated = true;
            return 0;
        }
        return length;
    }
    if (transfer.sink) {
        if (auto written = transfer.sink->write(data, length); !written) {
            transfer.sink_error = std::move(written.error());
            return 0;
        }
        return length;
    }
    if (transfer.body.size() + length > transfer.body_limit) {
        transfer.over_limit = true;
        return 0;
    }
    transfer.body.append(data, length);
    return length;
}

size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
    auto& transfer = *static_cast<Transfer*>(user);
    size_t wanted = static_cast<size_t>(std::min<std::uint64_t>(size * count, transfer.upload_size - transfer.uploaded));
    if (wanted == 0) return 0;
    auto n = transfer.upload->read(buffer, wanted);
    if (!n) {
        transfer.upload_error = std::move(n.error());
        return CURL_READFUNC_ABORT;
    }
    if (*n == 0) {
        transfer.upload_error = Error(str_cat("request body ended after ", transfer.uploaded, " of ",
                                              transfer.upload_size, " bytes"));
        return CURL_READFUNC_ABORT;
    }
    transfer.uploaded += *n;
    return *n;
}

bool retryable_transport_failure(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        // A reused connection died under a streamed body, which curl cannot rewind to resend: the operation
        // starts over with a fresh stream.
        case CURLE_SEND_FAIL_REWIND: return true;
        default: return false;
    }
}

Error transport_error(CURLcode code, const char* detail) {
    // curl's buffer may still hold an earlier failure of the same transfer: say what ended it too.
    std::string message(curl_easy_strerror(code));
    if (*detail && trim(detail) != message) message = str_cat(message, " (", trim(detail), ")");
    if (code == CURLE_OPERATION_TIMEDOUT) message = str_cat("timed out: ", message);
    if (code == CURLE_SSL_CONNECT_ERROR) message = str_cat("TLS handshake failed (does the server speak HTTPS?): ", message);
    if (code == CURLE_PEER_FAILED_VERIFICATION) message = str_cat("TLS certificate not trusted: ", message);
    // With TLS 1.3 a server that refuses our client certificate says so in an alert after the handshake, which
    // curl reports as a failed read or write: a refusal that no retry will change.
    std::string lower = to_lower(detail);
    bool certificate_alert = lower.find("alert") != std::string::npos && lower.find("certificate") != std::string::npos;
    if (certificate_alert) {
        return Error(str_cat("the server refused the TLS client certificate (none given, or not one it trusts: see "
                             "--registry-client-cert): ",
                             message));
    }
    return Error(std::move(message)).set_retryable(retryable_transport_failure(code));
}

// Query strings can carry credentials (a storage redirect's signature, an upload's state): never log them.
std::string loggable_url(std::string_view url) {
    size_t query = url.find('?');
    return query == std::string_view::npos ? std::string(url) : str_cat(url.substr(0, query), "?...");
}

bool is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// curl's URL API, owned.
struct CurlUrlDeleter {
    void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

Result<CurlUrl> parse_url(std::string_view url) {
    CurlUrl handle(curl_url());
    if (!handle) return fail("out of memory parsing a URL");
    if (curl_url_set(handle.get(), CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK)
        return fail(str_cat("invalid URL \"", loggable_url(url), "\""));
    return handle;
}

Result<std::string> url_part(CURLU* url, CURLUPart part, unsigned flags = 0) {
    char* value = nullptr;
    if (curl_url_get(url, part, &value, flags) != CURLUE_OK) return fail("URL lacks a required part");
    std::string text(value);
    curl_free(value);
    return text;
}

Result<std::string> checked_http_url(CURLU* url) {
    KILN_ASSIGN(std::string scheme, url_part(url, CURLUPART_SCHEME));
    KILN_ASSIGN(std::string text, url_part(url, CURLUPART_URL));
    if (to_lower(scheme) != "http" && to_lower(scheme) != "https")
        return fail(str_cat("refusing a ", scheme, " URL: only http and https are allowed"));
    return text;
}

}  // namespace

void HttpHeaders::add(std::string name, std::string value) { m_entries.emplace_back(std::move(name), std::move(value)); }

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
    std::string wanted = to_lower(name);
    for (const auto& [key, value] : m_entries)
        if (to_lower(key) == wanted) return value;
    return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(std::string_view name) const {
    std::string wanted = to_lower(name);
    std::vector<std::string> values;
    for (const auto& [key, value] : m_entries)
        if (to_lower(key) == wanted) values.push_back(value);
    return values;
}

// Idle easy handles; each keeps its connection cache, so consecutive requests reuse connections.
class HttpClient::HandlePool {
public:
    CurlEasy take() {
        std::lock_guard lock(m_mutex);
        if (m_idle.empty()) return CurlEasy(curl_easy_init());
        CurlEasy handle = std::move(m_idle.back());
        m_idle.pop_back();
        return handle;
    }
    void give_back(CurlEasy handle) {
        curl_easy_reset(handle.get());
        std::lock_guard lock(m_mutex);
        if (m_idle.size() < 8) m_idle.push_back(std::move(handle));
    }

private:
    std::mutex m_mutex;
    std::vector<CurlEasy> m_idle;
};

HttpClient::HttpClient(HttpClientOptions options)
    : m_options(std::move(options)), m_no_proxy(no_proxy_list()), m_handles(std::make_unique<HandlePool>()) {
    global_init();
    if (!m_options.extra_ca_pem.empty()) {
        // An extra CA adds to the system's trust, as Kaniko's --registry-certificate does; curl takes one bundle.
        if (const std::string& file = system_trust().file; !file.empty()) {
            if (auto system = read_file(file, 16 << 20)) m_ca_bundle = std::move(*system);
        }
        if (!m_ca_bundle.empty() && m_ca_bundle.back() != '\n') m_ca_bundle += '\n';
        m_ca_bundle += m_options.extra_ca_pem;
    }
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::send(const HttpRequest& request, Writer& sink) { return perform(request, &sink, 0); }

Result<HttpResponse> HttpClient::fetch(const HttpRequest& request, size_t body_limit) {
    return perform(request, nullptr, body_limit);
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request, Writer* sink, size_t body_limit) {
    KILN_ASSIGN(CurlUrl parsed, parse_url(request.url));
    KILN_ASSIGN(std::string url, checked_http_url(parsed.get()));
    KILN_ASSIGN(const std::string origin, url_origin(url));
    bool follow = request.redirects == Redirects::follow && !request.body;
    for (int redirects = 0;; ++redirects) {
        KILN_ASSIGN(std::string current_origin, url_origin(url));
        KILN_ASSIGN(HttpResponse response, transfer(request, url, current_origin == origin, sink, body_limit));
        std::optional<std::string> location = response.headers.get("Location");
        if (!follow || !is_redirect(response.status) || !location) return response;
        if (redirects == k_max_redirects) return fail(str_cat("more than ", k_max_redirects, " redirects"));
        auto next = resolve_url(url, *location);
        if (!next) return fail(next.error().context("following a redirect"));
        log_debug(request.method, " ", loggable_url(url), " redirected to ", loggable_url(*next));
        url = std::move(*next);
    }
}

Result<HttpResponse> HttpClient::transfer(const HttpRequest& request, const std::string& url,
                                          bool send_authorization, Writer* sink, size_t body_limit) {
    const std::string& method = request.method;
    bool has_body = method == "PUT" || method == "POST" || method == "PATCH";
    if (request.body && !has_body) return fail(str_cat("an HTTP ", method, " cannot carry a body"));

    CurlList header_list;
    bool headers_complete = true;
    auto add_header = [&](const std::string& line) {
        curl_slist* head = curl_slist_append(header_list.get(), line.c_str());
        if (!head) headers_complete = false;
        if (head && !header_list) header_list.reset(head);
    };
    add_header("Expect:");  // no 100-continue round trip before uploads
    for (const auto& [name, value] : request.headers.entries()) add_header(str_cat(name, ": ", value));
    if (send_authorization && !request.authorization.empty())
        add_header(str_cat("Authorization: ", request.authorization));
    if (!headers_complete) return fail("out of memory building request headers");

    CurlEasy handle = m_handles->take();
    if (!handle) return fail("curl_easy_init failed");
    CURL* curl = handle.get();
    Transfer state{.sink = sink,
                   .body_limit = body_limit,
                   .expects_body = method != "HEAD",
                   .upload = request.body,
                   .upload_size = request.body_size};

    char error_detail[CURL_ERROR_SIZE] = {};
    const HttpTimeouts& timeouts = m_options.timeouts;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, m_no_proxy.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_detail);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, m_options.user_agent.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.get());
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts.connect.count()));
    state.stall_limit = timeouts.stall;
    state.min_rate = std::max<std::uint64_t>(timeouts.min_rate, 1);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &state);
    // The request's own bound (small documents) or the deadline, whichever is shorter.
    std::chrono::milliseconds bound = timeouts.deadline;
    bool deadline_bounds = bound.count() > 0;
    if (request.timeout.count() > 0 && (!deadline_bounds || request.timeout < bound)) {
        bound = request.timeout;
        deadline_bounds = false;
    }
    if (bound.count() > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(bound.count()));
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    bool verify = m_options.tls_verification == TlsVerification::verify;
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (!m_ca_bundle.empty()) {
        curl_blob bundle{.data = m_ca_bundle.data(), .len = m_ca_bundle.size(), .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &bundle);
    }
    if (const auto& client = m_options.client_certificate) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, client->certificate_path.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLKEY, client->key_path.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);

    if (method == "GET") {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        // Uploads always declare their length (Content-Length: 0 without a body), as registries expect.
        if (!request.body) state.upload_size = 0;
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(state.upload_size));
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(curl, CURLOPT_READDATA, &state);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    }

    log_debug(method, " ", loggable_url(url));
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    m_handles->give_back(std::move(handle));

    if (state.upload_error) return fail(std::move(*state.upload_error).context("reading the request body"));
    if (state.sink_error) return fail(std::move(*state.sink_error));
    if (state.over_limit) return fail(str_cat("response body larger than the limit of ", body_limit, " bytes"));
    if (state.headers_too_large) return fail(str_cat("response headers larger than ", k_header_limit, " bytes"));
    if (state.stalled)
        return fail(Error(str_cat("timed out: ", state.moved_in_window == 0 ? "no byte" : format_bytes(state.moved_in_window),
                                  " moved in ", format_seconds(timeouts.stall.count() / 1000.0),
                                  " s, below the minimum of ", format_bytes(state.min_rate), "/s"))
                        .set_retryable());
    if (code == CURLE_OPERATION_TIMEDOUT && deadline_bounds)
        return fail(str_cat("gave up: the transfer took longer than its deadline of ",
                            format_seconds(static_cast<double>(timeouts.deadline.count()) / 1000.0), " s"));
    if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && state.error_body_truncated))
        return fail(transport_error(code, error_detail));

    HttpResponse response;
    response.status = status ? status : state.status;
    response.headers = std::move(state.headers);
    response.url = url;
    response.body = std::move(state.body);
    return response;
}

Result<std::string> url_origin(std::string_view url) {
    KILN_ASSIGN(CurlUrl parsed, parse_url(url));
    KILN_ASSIGN(std::string scheme, url_part(parsed.get(), CURLUPART_SCHEME));
    KILN_ASSIGN(std::string host, url_part(parsed.get(), CURLUPART_HOST));
    KILN_ASSIGN(std::string port, url_part(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT));
    return str_cat(to_lower(scheme), "://", to_lower(host), ":", port);
}

Result<std::string> resolve_url(std::string_view base, std::string_view reference) {
    KILN_ASSIGN(CurlUrl parsed, parse_url(base));
    if (curl_url_set(parsed.get(), CURLUPART_URL, std::string(reference).c_str(), 0) != CURLUE_OK)
        return fail(str_cat("invalid URL \"", loggable_url(reference), "\""));
    return checked_http_url(parsed.get());
}

Result<std::string> append_query(std::string_view url, std::string_view name, std::string_view value) {
    KILN_ASSIGN(CurlUrl parsed, parse_url(url));
    std::string pair = str_cat(name, "=", value);
    if (curl_url_set(parsed.get(), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        return fail(str_cat("cannot add ", name, " to URL \"", loggable_url(url), "\""));
    return url_part(parsed.get(), CURLUPART_URL);
}

}  // namespace kiln
