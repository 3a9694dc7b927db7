#include "tests/support/token_server.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

struct X509Deleter {
    void operator()(X509* certificate) const { X509_free(certificate); }
};
struct BioDeleter {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdContextDeleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};


// JWTs use base64url without padding.
std::string base64url(std::string_view bytes) {
    std::string encoded = base64_encode(bytes);
    while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
    for (char& c : encoded) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return encoded;
}

Result<std::unique_ptr<X509, X509Deleter>> self_signed_certificate(EVP_PKEY* key) {
    std::unique_ptr<X509, X509Deleter> certificate(X509_new());
    if (!certificate) return fail("X509_new failed");
    X509_set_version(certificate.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 24 * 3600);
    X509_set_pubkey(certificate.get(), key);
    X509_NAME* name = X509_get_subject_name(certificate.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("kiln test tokens"),
                               -1, -1, 0);
    X509_set_issuer_name(certificate.get(), name);
    if (X509_sign(certificate.get(), key, EVP_sha256()) == 0) return fail("X509_sign failed");
    return certificate;
}

Result<std::string> sign_rs256(EVP_PKEY* key, std::string_view input) {
    std::unique_ptr<EVP_MD_CTX, MdContextDeleter> context(EVP_MD_CTX_new());
    if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
        return fail("EVP_DigestSignInit failed");
    size_t length = 0;
    auto data = reinterpret_cast<const unsigned char*>(input.data());
    if (EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) return fail("EVP_DigestSign failed");
    std::string signature(length, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                       input.size()) != 1)
        return fail("EVP_DigestSign failed");
    signature.resize(length);
    return signature;
}

// One scope of a token request: "repository:team/app:pull,push".
struct Scope {
    std::string type;
    std::string name;
    std::vector<std::string> actions;
};

std::optional<Scope> parse_scope(std::string_view scope) {
    size_t first = scope.find(':');
    size_t last = scope.rfind(':');
    if (first == std::string_view::npos || first == last) return std::nullopt;
    return Scope{.type = std::string(scope.substr(0, first)),
                 .name = std::string(scope.substr(first + 1, last - first - 1)),
                 .actions = split(scope.substr(last + 1), ',')};
}

// Every scope in `values`: a parameter may repeat, and one value may hold several scopes separated by spaces
// (or '+', a space in form encoding that some clients also use in queries; no scope contains one).
std::vector<std::string> scopes_in(const std::vector<std::string>& values) {
    std::vector<std::string> scopes;
    for (std::string value : values) {
        for (char& c : value)
            if (c == '+') c = ' ';
        for (const std::string& scope : split(value, ' '))
            if (!scope.empty()) scopes.push_back(scope);
    }
    return scopes;
}

bool contains(const std::vector<std::string>& values, std::string_view value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

// The Registry v2 error body of a refused GET /token.
LocalResponse registry_error(int status, std::string_view code, std::string_view message) {
    nlohmann::json body = {{"errors", {{{"code", code}, {"message", message}}}}};
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
    if (status == 401) headers.emplace_back("WWW-Authenticate", "Basic realm=\"kiln-test-tokens\"");
    return {.status = status, .headers = std::move(headers), .body = body.dump()};
}

// The OAuth2 error body (RFC 6749 §5.2) of a refused POST /token.
LocalResponse oauth_error(int status, std::string_view error, std::string_view description) {
    nlohmann::json body = {{"error", error}, {"error_description", description}};
    return {.status = status, .headers = {{"Content-Type", "application/json"}}, .body = body.dump()};
}

}  // namespace

Result<std::unique_ptr<TokenServer>> TokenServer::start(TokenServerOptions options) {
    std::unique_ptr<TokenServer> server(new TokenServer());
    server->m_options = std::move(options);
    KILN_ASSIGN(server->m_dir, TempDir::create(default_temp_parent(), "kiln-token-server-"));
    server->m_key = EVP_RSA_gen(2048);
    if (!server->m_key) return fail("RSA key generation failed");
    KILN_ASSIGN(auto certificate, self_signed_certificate(server->m_key));

    unsigned char* der = nullptr;
    int der_length = i2d_X509(certificate.get(), &der);
    if (der_length <= 0) return fail("i2d_X509 failed");
    server->m_certificate_der_base64 = base64_encode(std::string_view(reinterpret_cast<char*>(der), der_length));
    OPENSSL_free(der);

    std::unique_ptr<BIO, BioDeleter> pem(BIO_new(BIO_s_mem()));
    if (!pem || PEM_write_bio_X509(pem.get(), certificate.get()) != 1) return fail("PEM_write_bio_X509 failed");
    char* pem_data = nullptr;
    long pem_length = BIO_get_mem_data(pem.get(), &pem_data);
    server->m_certificate_path = server->m_dir.path() + "/token-ca.pem";
    KILN_TRY(write_file_atomic(server->m_certificate_path,
                               std::string_view(pem_data, static_cast<size_t>(pem_length))));

    TokenServer* self = server.get();
    KILN_ASSIGN(server->m_server, LocalHttpServer::start([self](const LocalRequest& request) {
                    return self->issue(request);
                }));
    return server;
}

TokenServer::~TokenServer() {
    m_server.reset();  // the serving thread uses the key: stop it first
    EVP_PKEY_free(m_key);
}

std::string TokenServer::realm() const { return m_server->url("/token"); }

std::string TokenServer::registry_auth_config() const {
    return str_cat("token:\n"
                   "  realm: ", realm(), "\n"
                   "  service: ", m_options.service, "\n"
                   "  issuer: ", m_options.issuer, "\n"
                   "  rootcertbundle: ", m_certificate_path, "\n");
}

std::vector<TokenRequestRecord> TokenServer::records() const {
    std::lock_guard lock(m_mutex);
    return m_records;
}

int TokenServer::authorized_requests() const {
    std::lock_guard lock(m_mutex);
    auto authorized = [](const TokenRequestRecord& record) { return !record.authorization.empty(); };
    return static_cast<int>(std::count_if(m_records.begin(), m_records.end(), authorized));
}

LocalResponse TokenServer::issue(const LocalRequest& request) {
    if (request.path() != "/token" || (request.method != "GET" && request.method != "POST"))
        return {.status = 404, .body = "{}"};
    TokenRequestRecord record;
    record.method = request.method;
    // Only the scheme: a value without one may be a bare secret.
    if (auto authorization = request.header("Authorization"))
        record.authorization = authorization->find(' ') == std::string::npos
                                   ? "(no scheme)"
                                   : authorization->substr(0, authorization->find(' '));
    LocalResponse response =
        request.method == "GET" ? issue_for_get(request, record) : issue_for_post(request, record);
    record.status = response.status;
    if (response.status != 200) record.username.clear();
    std::lock_guard lock(m_mutex);
    m_records.push_back(std::move(record));
    return response;
}

LocalResponse TokenServer::issue_for_get(const LocalRequest& request, TokenRequestRecord& record) const {
    record.scopes = scopes_in(request.query("scope"));
    record.service = join(request.query("service"), " ");
    const TokenAccount* account = nullptr;
    if (auto authorization = request.header("Authorization")) {
        if (to_lower(record.authorization) != "basic")
            return registry_error(401, "UNAUTHORIZED", "only Basic credentials are accepted");
        std::optional<std::string> decoded =
            base64_decode(trim(authorization->substr(record.authorization.size())));
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (colon == std::string::npos) return registry_error(401, "UNAUTHORIZED", "malformed Basic credentials");
        std::string username = decoded->substr(0, colon);
        record.username = username;
        for (const TokenAccount& candidate : m_options.accounts)
            if (candidate.username == username && candidate.password == decoded->substr(colon + 1))
                account = &candidate;
        if (!account) return registry_error(401, "UNAUTHORIZED", "invalid username or password");
    }
    auto token = make_token(account ? account->username : "",
                            account ? account->actions : m_options.anonymous_actions, record);
    if (!token) return {.status = 500, .body = token.error().message()};
    std::string field = m_options.field == TokenField::token ? "token" : "access_token";
    nlohmann::json body = {{field, *token}, {"expires_in", 300}};
    if (account && !account->refresh_token.empty() && contains(request.query("offline_token"), "true"))
        body["refresh_token"] = account->refresh_token;
    return {.status = 200, .headers = {{"Content-Type", "application/json"}}, .body = body.dump()};
}

LocalResponse TokenServer::issue_for_post(const LocalRequest& request, TokenRequestRecord& record) const {
    std::string content_type = to_lower(request.header("Content-Type").value_or(""));
    if (!content_type.starts_with("application/x-www-form-urlencoded"))
        return oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded");
    auto field = [&](std::string_view name) {
        std::vector<std::string> values = request.form(name);
        return values.empty() ? std::string() : values.front();
    };
    record.grant_type = field("grant_type");
    record.scopes = scopes_in(request.form("scope"));
    record.service = field("service");
    const TokenAccount* account = nullptr;
    if (record.grant_type == "password") {
        record.username = field("username");
        std::string password = field("password");
        if (record.username.empty()) return oauth_error(400, "invalid_request", "username is missing");
        for (const TokenAccount& candidate : m_options.accounts)
            if (candidate.username == record.username && candidate.password == password) account = &candidate;
        if (!account) return oauth_error(401, "invalid_grant", "invalid username or password");
    } else if (record.grant_type == "refresh_token") {
        std::string refresh_token = field("refresh_token");
        if (refresh_token.empty()) return oauth_error(400, "invalid_request", "refresh_token is missing");
        for (const TokenAccount& candidate : m_options.accounts)
            if (!candidate.refresh_token.empty() && candidate.refresh_token == refresh_token) account = &candidate;
        if (!account) return oauth_error(401, "invalid_grant", "unknown refresh token");
        record.username = account->username;
    } else {
        return oauth_error(400, "unsupported_grant_type", str_cat("grant_type \"", record.grant_type, "\""));
    }
    auto token = make_token(account->username, account->actions, record);
    if (!token) return {.status = 500, .body = token.error().message()};
    nlohmann::json body = {{"access_token", *token}, {"expires_in", 300}, {"scope", join(record.granted, " ")}};
    if (!account->refresh_token.empty()) body["refresh_token"] = account->refresh_token;
    return {.status = 200, .headers = {{"Content-Type", "application/json"}}, .body = body.dump()};
}

Result<std::string> TokenServer::make_token(const std::string& subject, const std::vector<std::string>& allowed,
                                            TokenRequestRecord& record) const {
    nlohmann::json access = nlohmann::json::array();
    for (const std::string& text : record.scopes) {
        std::optional<Scope> scope = parse_scope(text);
        if (!scope) continue;
        std::vector<std::string> granted;
        for (const std::string& action : scope->actions)
            if (contains(allowed, action) && !contains(granted, action)) granted.push_back(action);
        // Like real token servers, a scope granted nothing is left out rather than refused.
        if (granted.empty()) continue;
        access.push_back({{"type", scope->type}, {"name", scope->name}, {"actions", granted}});
        record.granted.push_back(str_cat(scope->type, ":", scope->name, ":", join(granted, ",")));
    }
    std::int64_t now = std::time(nullptr);
    unsigned char random[16];
    RAND_bytes(random, sizeof random);
    nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {m_certificate_der_base64}}};
    nlohmann::json claims = {{"iss", m_options.issuer},
                             {"sub", subject},
                             {"aud", m_options.service},
                             {"exp", now + 300},
                             {"nbf", now - 60},
                             {"iat", now},
                             {"jti", base64url(std::string_view(reinterpret_cast<char*>(random), sizeof random))},
                             {"access", access}};
    std::string signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
    KILN_ASSIGN(std::string signature, sign_rs256(m_key, signing_input));
    return signing_input + "." + base64url(signature);
}

}  // namespace kiln::test
