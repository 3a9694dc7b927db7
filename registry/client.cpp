// The transport half of RegistryClient: URLs, authentication, retries. The operations live in manifests.cpp and
// blobs.cpp.
#include "registry/client.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/api_error.hpp"
#include "registry/client_internal.hpp"

namespace kiln {

std::string canonical_registry(std::string registry) {
    for (std::string_view alias : {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
        if (registry == alias) return "docker.io";
    return registry;
}

RegistrySet RegistrySet::all() {
    RegistrySet set;
    set.m_all = true;
    return set;
}

void RegistrySet::add(std::string registry) { m_names.insert(canonical_registry(std::move(registry))); }

bool RegistrySet::contains(std::string_view registry) const { return m_all || m_names.contains(registry); }

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int next_attempt, std::chrono::milliseconds asked) {
    thread_local std::mt19937_64 random{std::random_device{}()};
    // Retry i (0 for the first) of n waits window * 4^i / (4^0 + … + 4^(n-1)) = window * 3 * 4^i / (4^n - 1).
    int retries = std::clamp(policy.attempts - 1, 1, 200);
    int index = std::clamp(next_attempt - 2, 0, retries - 1);
    double share = 3 * std::pow(4.0, index) / (std::pow(4.0, retries) - 1);
    double base = static_cast<double>(policy.window.count()) * share;
    double jittered = std::uniform_real_distribution<double>(base, base * 1.25)(random);
    auto delay = std::max(std::chrono::milliseconds(static_cast<std::int64_t>(jittered)), k_shortest_retry_delay);
    return std::max(delay, std::min(asked, policy.max_retry_after));
}

bool wait_for_retry(const RetryPolicy& policy, std::chrono::milliseconds delay) {
    if (!policy.stop) {
        std::this_thread::sleep_for(delay);
        return true;
    }
    auto until = std::chrono::steady_clock::now() + delay;
    while (!*policy.stop) {
        auto now = std::chrono::steady_clock::now();
        if (now >= until) return true;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, k_stop_check_interval));
    }
    return false;
}

RegistryClient::RegistryClient(RegistryClientOptions options)
    : m_options(std::move(options)), m_auth(m_options.credentials) {}

RegistryClient::~RegistryClient() = default;

HttpClient& RegistryClient::http_for(const Reference& reference) {
    bool verify = !m_options.skip_tls_verify.contains(reference.registry());
    auto tls = m_options.tls.find(reference.registry());
    std::string key = tls != m_options.tls.end() ? str_cat(verify ? "verify " : "skip ", reference.registry())
                                                 : std::string(verify ? "verify" : "skip");
    std::lock_guard lock(m_http_mutex);
    std::unique_ptr<HttpClient>& client = m_http[key];
    if (!client) {
        HttpClientOptions http{.tls_verification = verify ? TlsVerification::verify : TlsVerification::skip,
                               .user_agent = m_options.user_agent,
                               .timeouts = m_options.timeouts};
        http.extra_ca_pem = m_options.trusted_ca_pem;
        if (tls != m_options.tls.end()) {
            http.extra_ca_pem += tls->second.extra_ca_pem;
            http.client_certificate = tls->second.client_certificate;
        }
        client = std::make_unique<HttpClient>(std::move(http));
    }
    return *client;
}

std::string RegistryClient::repository_url(const Reference& reference) const {
    std::string_view scheme = m_options.plain_http.contains(reference.registry()) ? "http" : "https";
    return str_cat(scheme, "://", reference.api_host(), "/v2/", reference.repository());
}

Result<HttpResponse> RegistryClient::exchange(const Call& call, HttpRequest request, const RequestBody& body,
                                              Writer* sink, size_t body_limit) {
    const Reference& repository = call.repository;
    HttpClient& http = http_for(repository);
    std::string scope = repository_scope(repository.repository(), call.access);
    if (!call.extra_scope.empty()) scope += " " + call.extra_scope;
    KILN_ASSIGN(std::string registry_origin, with_context(url_origin(repository_url(repository)), call.what));
    KILN_ASSIGN(std::string request_origin, with_context(url_origin(request.url), call.what));
    // Upload locations may point at another host (storage behind the registry): it never gets the token.
    bool to_registry = request_origin == registry_origin;
    for (bool challenge_answered = false;; challenge_answered = true) {
        request.authorization = to_registry ? m_auth.cached(repository.registry(), scope) : std::string();
        std::optional<StringReader> replay;
        if (body.bytes) {
            replay.emplace(std::string(*body.bytes));
            request.body = &*replay;
            request.body_size = body.bytes->size();
        } else if (body.stream) {
            request.body = body.stream;
            request.body_size = body.stream_size;
        }
        auto response = sink ? http.send(request, *sink) : http.fetch(request, body_limit);
        if (!response) return fail(std::move(response.error()).context(call.what));
        // A streamed body is gone once sent: its 401 goes back to the operation, whose next try starts over.
        if (response->status != 401 || !to_registry || body.stream || challenge_answered) return response;
        std::vector<AuthChallenge> challenges;
        for (const std::string& header : response->headers.get_all("WWW-Authenticate")) {
            KILN_ASSIGN(auto parsed, with_context(parse_www_authenticate(header), call.what));
            challenges.insert(challenges.end(), parsed.begin(), parsed.end());
        }
        if (challenges.empty()) return response;
        m_auth.forget(repository.registry(), scope);
        KILN_TRY_CONTEXT(m_auth.authorize(http, repository.registry(), scope, challenges), call.what);
    }
}

}  // namespace kiln
