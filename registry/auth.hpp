#pragma once
// Registry authentication: WWW-Authenticate challenges, the Bearer token flow (anonymous unless a
// CredentialProvider supplies a secret; an identity token uses Docker's OAuth2 refresh-token grant) and Basic,
// with Authorization values cached per registry and scope.
// Secrets and tokens never appear in logs or error messages.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "registry/http.hpp"

namespace kiln {

// One challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`.
struct AuthChallenge {
    std::string scheme;                         // lowercased: "bearer", "basic"
    std::map<std::string, std::string> params;  // names lowercased, values unquoted

    // The value of parameter `name` (lowercase), empty when absent.
    std::string param(std::string_view name) const;
};

// Parses a WWW-Authenticate value, which may hold several challenges (RFC 7235). Malformed input is an error.
Result<std::vector<AuthChallenge>> parse_www_authenticate(std::string_view header);

// What an operation needs from a repository. Pushing needs pulling too (to check for existing blobs).
enum class RepositoryAccess { pull, push };

// "repository:library/busybox:pull" or "repository:team/app:pull,push".
std::string repository_scope(std::string_view repository, RepositoryAccess access);

// A secret for one registry, as docker's config.json or a credential helper would give it.
struct Credential {
    std::string username;
    std::string password;
    // An OAuth2 refresh token ("identitytoken" in config.json); used instead of the password when set.
    std::string identity_token;
};

// Where credentials come from: config.json and credential helpers (registry/credentials.hpp), or none.
class CredentialProvider {
public:
    virtual ~CredentialProvider() = default;
    // The credential for `registry` (as in references: "docker.io", "host:port"), or nullopt for anonymous access.
    virtual Result<std::optional<Credential>> credential_for(std::string_view registry) = 0;
};

// Always anonymous: public images and registries without auth.
class AnonymousCredentials final : public CredentialProvider {
public:
    // Never a credential.
    Result<std::optional<Credential>> credential_for(std::string_view) override { return std::nullopt; }
};

// Answers challenges and remembers the answers. Thread-safe.
class Authenticator {
public:
    // A null provider means anonymous.
    explicit Authenticator(std::shared_ptr<CredentialProvider> credentials);

    // The cached Authorization value for requests to `registry` that need `scope`, or empty when none is known.
    std::string cached(std::string_view registry, std::string_view scope) const;

    // Answers a 401's challenges for `scope` (space-separated scopes allowed): fetches a token from the Bearer
    // realm through `http`, or encodes the credential for Basic. Caches and returns the Authorization value.
    Result<std::string> authorize(HttpClient& http, std::string_view registry, std::string_view scope,
                                  const std::vector<AuthChallenge>& challenges);

    // Drops a cached value the registry refused.
    void forget(std::string_view registry, std::string_view scope);

private:
    struct Entry {
        std::string authorization;
        std::chrono::steady_clock::time_point expires;
    };
    Result<Entry> fetch_token(HttpClient& http, const AuthChallenge& challenge, std::string_view scope,
                              const std::optional<Credential>& credential) const;

    std::shared_ptr<CredentialProvider> m_credentials;
    mutable std::mutex m_mutex;
    std::map<std::string, Entry, std::less<>> m_cache;
};

}  // namespace kiln
