#include "registry/auth.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/api_error.hpp"

namespace kiln {
namespace {

constexpr size_t k_token_response_limit = 1 << 20;
constexpr std::chrono::milliseconds k_token_timeout{60000};
// The distribution token spec: a token lives at least 60 s, whatever expires_in says.
constexpr std::int64_t k_min_token_seconds = 60;
// Refresh a little early, so that a token does not expire between the lookup and the request.
constexpr std::chrono::seconds k_expiry_margin{10};
// Basic authorizations do not expire; re-read the credential now and then anyway.
constexpr std::chrono::minutes k_basic_lifetime{30};
// Docker's token servers require a client_id on the OAuth2 grant; any name will do.
constexpr std::string_view k_oauth_client_id = "kiln";

// tchar from RFC 7230.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A token goes into a header: refuse anything that could end it or inject another.
bool is_header_safe(std::string_view token) {
    for (char c : token)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f) return false;
    return !token.empty();
}

// application/x-www-form-urlencoded: unreserved characters as they are, space as '+', the rest %XX.
std::string form_encode(std::string_view value) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string encoded;
    for (char c : value) {
        auto byte = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            std::string_view("-._~").find(c) != std::string_view::npos) {
            encoded += c;
        } else if (c == ' ') {
            encoded += '+';
        } else {
            encoded += '%';
            encoded += k_hex[byte >> 4];
            encoded += k_hex[byte & 0xf];
        }
    }
    return encoded;
}

// "repository:a/b:pull,push" and "repository:a/b:push,pull" are one scope.
bool same_scope(std::string_view a, std::string_view b) {
    size_t a_actions = a.rfind(':');
    size_t b_actions = b.rfind(':');
    if (a_actions == std::string_view::npos || b_actions == std::string_view::npos) return a == b;
    if (a.substr(0, a_actions) != b.substr(0, b_actions)) return false;
    std::vector<std::string> left = split(a.substr(a_actions + 1), ',');
    std::vector<std::string> right = split(b.substr(b_actions + 1), ',');
    std::sort(left.begin(), left.end());
    std::sort(right.begin(), right.end());
    return left == right;
}

std::string cache_key(std::string_view registry, std::string_view scope) { return str_cat(registry, " ", scope); }

class ChallengeParser {
public:
    explicit ChallengeParser(std::string_view text) : m_text(text) {}

    Result<std::vector<AuthChallenge>> parse() {
        std::vector<AuthChallenge> challenges;
        while (true) {
            skip_separators();
            if (at_end()) break;
            std::string_view scheme = token();
            if (scheme.empty()) return error("expected an authentication scheme");
            AuthChallenge challenge{.scheme = to_lower(scheme)};
            while (true) {
                skip_separators();
                size_t param_start = m_position;
                std::string_view name = token();
                if (name.empty()) {
                    if (at_end()) break;
                    return error("expected a parameter");
                }
                skip_spaces();
                if (at_end() || m_text[m_position] != '=') {
                    m_position = param_start;  // a bare token starts the next challenge
                    break;
                }
                ++m_position;
                skip_spaces();
                KILN_ASSIGN(std::string value, parameter_value());
                challenge.params[to_lower(name)] = std::move(value);
            }
            challenges.push_back(std::move(challenge));
        }
        if (challenges.empty()) return error("no challenge");
        return challenges;
    }

private:
    bool at_end() const { return m_position >= m_text.size(); }
    void skip_spaces() {
        while (!at_end() && (m_text[m_position] == ' ' || m_text[m_position] == '\t')) ++m_position;
    }
    void skip_separators() {
        while (!at_end() && (m_text[m_position] == ' ' || m_text[m_position] == '\t' || m_text[m_position] == ','))
            ++m_position;
    }
    std::string_view token() {
        size_t start = m_position;
        while (!at_end() && is_token_char(m_text[m_position])) ++m_position;
        return m_text.substr(start, m_position - start);
    }
    Result<std::string> parameter_value() {
        if (at_end() || m_text[m_position] != '"') {
            // RFC 7235 wants a token here, but registries send unquoted URLs (realm=https://…): take everything
            // up to the next separator.
            size_t start = m_position;
            while (!at_end() && m_text[m_position] != ',' && m_text[m_position] != ' ' && m_text[m_position] != '\t')
                ++m_position;
            return std::string(m_text.substr(start, m_position - start));
        }
        std::string value;
        for (++m_position; !at_end(); ++m_position) {
            char c = m_text[m_position];
            if (c == '"') {
                ++m_position;
                return value;
            }
            if (c == '\\' && m_position + 1 < m_text.size()) c = m_text[++m_position];
            value += c;
        }
        return error("unterminated quoted string");
    }
    std::unexpected<Error> error(std::string_view what) const {
        return fail(str_cat("invalid WWW-Authenticate header (", what, " at offset ", m_position, "): ",
                            m_text.substr(0, 200)));
    }

    std::string_view m_text;
    size_t m_position = 0;
};

}  // namespace

std::string AuthChallenge::param(std::string_view name) const {
    auto found = params.find(std::string(name));
    return found == params.end() ? std::string() : found->second;
}

Result<std::vector<AuthChallenge>> parse_www_authenticate(std::string_view header) {
    return ChallengeParser(header).parse();
}

std::string repository_scope(std::string_view repository, RepositoryAccess access) {
    return str_cat("repository:", repository, access == RepositoryAccess::push ? ":pull,push" : ":pull");
}

Authenticator::Authenticator(std::shared_ptr<CredentialProvider> credentials)
    : m_credentials(credentials ? std::move(credentials) : std::make_shared<AnonymousCredentials>()) {}

std::string Authenticator::cached(std::string_view registry, std::string_view scope) const {
    std::lock_guard lock(m_mutex);
    auto found = m_cache.find(cache_key(registry, scope));
    if (found == m_cache.end() || found->second.expires <= std::chrono::steady_clock::now()) return "";
    return found->second.authorization;
}

void Authenticator::forget(std::string_view registry, std::string_view scope) {
    std::lock_guard lock(m_mutex);
    m_cache.erase(cache_key(registry, scope));
}

Result<std::string> Authenticator::authorize(HttpClient& http, std::string_view registry, std::string_view scope,
                                             const std::vector<AuthChallenge>& challenges) {
    const AuthChallenge* bearer = nullptr;
    const AuthChallenge* basic = nullptr;
    std::vector<std::string> offered;
    for (const AuthChallenge& challenge : challenges) {
        if (challenge.scheme == "bearer" && !bearer) bearer = &challenge;
        if (challenge.scheme == "basic" && !basic) basic = &challenge;
        offered.push_back(challenge.scheme);
    }
    if (!bearer && !basic)
        return fail(str_cat(registry, " asks for unsupported authentication (", join(offered, ", "), ")"));

    KILN_ASSIGN(std::optional<Credential> credential,
                with_context(m_credentials->credential_for(registry), str_cat("credentials for ", registry)));
    Entry entry;
    if (bearer) {
        KILN_ASSIGN(entry, fetch_token(http, *bearer, scope, credential));
    } else {
        if (!credential || credential->username.empty())
            return fail(str_cat(registry, " requires a username and password (Basic authentication) and none are "
                                          "configured for it"));
        entry = {str_cat("Basic ", base64_encode(str_cat(credential->username, ":", credential->password))),
                 std::chrono::steady_clock::now() + k_basic_lifetime};
    }
    std::lock_guard lock(m_mutex);
    m_cache[cache_key(registry, scope)] = entry;
    return entry.authorization;
}

Result<Authenticator::Entry> Authenticator::fetch_token(HttpClient& http, const AuthChallenge& challenge,
                                                        std::string_view scope,
                                                        const std::optional<Credential>& credential) const {
    std::string realm = challenge.param("realm");
    if (realm.empty()) return fail("Bearer challenge without a realm");
    // Resolving the realm against itself accepts only absolute http(s) URLs.
    KILN_ASSIGN(std::string url, with_context(resolve_url(realm, realm), "token realm"));
    KILN_ASSIGN(std::string realm_origin, url_origin(url));
    std::string service = challenge.param("service");
    std::vector<std::string> scopes;
    for (std::string& one : split(scope, ' '))
        if (!one.empty()) scopes.push_back(std::move(one));
    std::string challenge_scope = challenge.param("scope");
    // The registry may name a scope we did not think of (extra actions); ask for it too.
    // A challenge may list our own actions in another order ("push,pull"): that is not a new scope.
    for (const std::string& challenged : split(challenge_scope, ' ')) {
        if (challenged.empty()) continue;
        if (std::none_of(scopes.begin(), scopes.end(),
                         [&](const std::string& one) { return same_scope(one, challenged); }))
            scopes.push_back(challenged);
    }

    bool oauth = credential && !credential->identity_token.empty();
    std::string what = str_cat(oauth ? "POST" : "GET", " token from ", realm_origin, " for ", scope);
    HttpRequest request{.url = url, .timeout = k_token_timeout};
    request.headers.add("Accept", "application/json");
    // Outlives the request, which reads it.
    std::optional<StringReader> form_reader;
    if (oauth) {
        // Docker's OAuth2 refresh-token grant: the identity token goes in the form body, never in the URL.
        std::string form = str_cat("grant_type=refresh_token&refresh_token=", form_encode(credential->identity_token),
                                   "&client_id=", k_oauth_client_id);
        if (!service.empty()) form += str_cat("&service=", form_encode(service));
        // One space-separated scope field, as RFC 6749 §3.3 and docker, containerd and go-containerregistry send it.
        if (!scopes.empty()) form += str_cat("&scope=", form_encode(join(scopes, " ")));
        request.method = "POST";
        request.redirects = Redirects::report;  // a body is never re-sent to wherever a redirect points
        request.headers.add("Content-Type", "application/x-www-form-urlencoded");
        request.body_size = form.size();
        request.body = &form_reader.emplace(std::move(form));
    } else {
        if (!service.empty()) {
            KILN_ASSIGN(request.url, append_query(request.url, "service", service));
        }
        for (const std::string& one : scopes) {
            KILN_ASSIGN(request.url, append_query(request.url, "scope", one));
        }
        request.redirects = Redirects::follow;
        if (credential && !credential->username.empty())
            request.authorization =
                str_cat("Basic ", base64_encode(str_cat(credential->username, ":", credential->password)));
    }
    log_debug("requesting a token from ", realm_origin, " for ", scope, oauth ? " with an identity token" : "");
    KILN_ASSIGN(HttpResponse response, with_context(http.fetch(request, k_token_response_limit), what));
    if (!response.ok()) return fail(http_status_error(what, response));

    nlohmann::json json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return fail(str_cat(what, ": the answer is not a JSON object"));
    std::string token;
    // The OAuth2 answer has `access_token` (and may carry a new refresh token, which a build does not need).
    for (const char* field : {"token", "access_token"}) {
        auto found = json.find(field);
        if (found != json.end() && found->is_string() && !found->get<std::string>().empty()) {
            token = found->get<std::string>();
            break;
        }
    }
    if (token.empty()) return fail(str_cat(what, ": the answer has no token"));
    if (!is_header_safe(token)) return fail(str_cat(what, ": the token contains characters a header cannot carry"));
    std::int64_t lifetime = k_min_token_seconds;
    if (auto expires = json.find("expires_in"); expires != json.end() && expires->is_number_integer())
        lifetime = std::max(lifetime, expires->get<std::int64_t>());
    lifetime = std::min<std::int64_t>(lifetime, 24 * 3600);
    return Entry{str_cat("Bearer ", token),
                 std::chrono::steady_clock::now() + std::chrono::seconds(lifetime) - k_expiry_margin};
}

}  // namespace kiln
