// The transport half of RegistryClient: URLs, authentication, retries. The operations live in manifests.cpp and
// blobs.cpp.
#include "registry/client.hpp"

#include <thread>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/api_error.hpp"
#include "registry/client_internal.hpp"

namespace kiln {
namespace {

// Counts what reaches the sink, so that a failed download is retried only when the sink is still untouched.
class CountingWriter final : public Writer {
public:
    explicit CountingWriter(Writer* inner) : m_inner(inner) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        m_count += size;
        return m_inner->write(buffer, size);
    }
    std::uint64_t count() const { return m_count; }

private:
    Writer* m_inner;
    std::uint64_t m_count = 0;
};

}  // namespace

RegistrySet RegistrySet::all() {
    RegistrySet set;
    set.m_all = true;
    return set;
}

void RegistrySet::add(std::string registry) {
    // Users write Docker Hub several ways; references normalize it to docker.io.
    if (registry == "index.docker.io" || registry == "registry-1.docker.io") registry = "docker.io";
    m_names.insert(std::move(registry));
}

bool RegistrySet::contains(std::string_view registry) const { return m_all || m_names.contains(registry); }

RegistryClient::RegistryClient(RegistryClientOptions options)
    : m_options(std::move(options)),
      m_verifying_http(HttpClientOptions{.tls_verification = TlsVerification::verify,
                                         .user_agent = m_options.user_agent,
                                         .timeouts = m_options.timeouts}),
      m_unverified_http(HttpClientOptions{.tls_verification = TlsVerification::skip,
                                          .user_agent = m_options.user_agent,
                                          .timeouts = m_options.timeouts}),
      m_auth(m_options.credentials) {}

RegistryClient::~RegistryClient() = default;

HttpClient& RegistryClient::http_for(const Reference& reference) {
    return m_options.skip_tls_verify.contains(reference.registry()) ? m_unverified_http : m_verifying_http;
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
    KILN_ASSIGN(std::string registry_origin, with_context(url_origin(repository_url(repository)), call.what));
    KILN_ASSIGN(std::string request_origin, with_context(url_origin(request.url), call.what));
    // Upload locations may point at another host (storage behind the registry): it never gets the token.
    bool to_registry = request_origin == registry_origin;
    CountingWriter counted(sink);
    bool challenge_answered = false;
    for (int attempt = 1;; ++attempt) {
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
        auto response = sink ? http.send(request, counted) : http.fetch(request, body_limit);
        // A streamed body is gone once sent, and bytes given to the sink cannot be taken back.
        bool repeatable = !body.stream && counted.count() == 0;
        bool may_retry = repeatable && attempt < m_options.attempts;
        if (!response) {
            Error error = std::move(response.error()).context(call.what);
            if (!error.retryable() || !may_retry) return fail(std::move(error));
            log_warn(error.message(), "; retrying");
            std::this_thread::sleep_for(m_options.retry_delay);
            continue;
        }
        if (response->status == 401 && to_registry && repeatable && !challenge_answered) {
            std::vector<AuthChallenge> challenges;
            for (const std::string& header : response->headers.get_all("WWW-Authenticate")) {
                KILN_ASSIGN(auto parsed, with_context(parse_www_authenticate(header), call.what));
                challenges.insert(challenges.end(), parsed.begin(), parsed.end());
            }
            if (!challenges.empty()) {
                m_auth.forget(repository.registry(), scope);
                KILN_TRY_CONTEXT(m_auth.authorize(http, repository.registry(), scope, challenges), call.what);
                challenge_answered = true;
                --attempt;  // answering a challenge is not a failed try
                continue;
            }
        }
        if (is_retryable_status(response->status) && may_retry) {
            log_warn(http_status_error(call.what, *response).message(), "; retrying");
            std::this_thread::sleep_for(m_options.retry_delay);
            continue;
        }
        return response;
    }
}

}  // namespace kiln
