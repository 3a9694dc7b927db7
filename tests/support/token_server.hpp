#pragma once
// A token server for the registry's Bearer flow (distribution's `auth: token`), in-process on 127.0.0.1. It issues
// RS256 JWTs the registry trusts through a self-signed certificate, granting what was asked for intersected with
// what the caller may do: an account's actions after Basic auth (GET /token) or an OAuth2 password or
// refresh-token grant (POST /token, Docker's `identitytoken`), the anonymous actions otherwise.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/local_http_server.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace kiln::test {

// Which JSON field carries the token: registries' token servers use either.
enum class TokenField { token, access_token };

// A user of the token server.
struct TokenAccount {
    std::string username;
    std::string password;
    // What the account may do in any repository ("pull", "push", "delete", "*" as a literal action).
    std::vector<std::string> actions = {"pull", "push"};
    // Accepted by the refresh-token grant (Docker's identitytoken) and handed out by the password grant and by
    // GET /token?offline_token=true; empty for an account without one.
    std::string refresh_token;
};

struct TokenServerOptions {
    std::string service = "kiln-test-registry";
    std::string issuer = "kiln-test-issuer";
    TokenField field = TokenField::token;
    std::vector<TokenAccount> accounts;
    // What a request without credentials is granted; the default grants anonymous requests everything they ask.
    std::vector<std::string> anonymous_actions = {"pull", "push"};
};

// One token request as the server understood it, without any secret in it: safe to print.
struct TokenRequestRecord {
    // "GET" or "POST".
    std::string method;
    // The scheme of the Authorization header ("Basic"), empty without one.
    std::string authorization;
    // POST: "password" or "refresh_token".
    std::string grant_type;
    // The account that authenticated; empty when anonymous or refused.
    std::string username;
    std::string service;
    // As requested ("repository:team/app:pull,push"), and as granted in the same form; a scope granted nothing
    // is left out.
    std::vector<std::string> scopes;
    std::vector<std::string> granted;
    // 200, or 400/401 when refused.
    int status = 0;
};

class TokenServer {
public:
    // Generates a key and certificate in a temporary directory and starts serving GET /token.
    static Result<std::unique_ptr<TokenServer>> start(TokenServerOptions options = {});
    ~TokenServer();
    TokenServer(const TokenServer&) = delete;
    TokenServer& operator=(const TokenServer&) = delete;

    // "http://127.0.0.1:<port>/token".
    std::string realm() const;
    const std::string& service() const { return m_options.service; }
    // The body of a registry config's `auth:` section trusting this server (RegistryProcessOptions::auth_config).
    std::string registry_auth_config() const;
    // Every token request served, in order; their `scope` and `service` parameters say what was asked. Raw, so
    // they hold credentials (Authorization, form bodies): assert on them, do not print them.
    std::vector<LocalRequest> requests() const { return m_server->requests(); }
    // Every token request served, in order, as understood, without secrets.
    std::vector<TokenRequestRecord> records() const;
    // How many requests carried an Authorization header.
    int authorized_requests() const;

private:
    TokenServer() = default;
    LocalResponse issue(const LocalRequest& request);
    LocalResponse issue_for_get(const LocalRequest& request, TokenRequestRecord& record) const;
    LocalResponse issue_for_post(const LocalRequest& request, TokenRequestRecord& record) const;
    // A signed JWT for `subject` granting `record.scopes` intersected with `allowed`; fills `record.granted`.
    Result<std::string> make_token(const std::string& subject, const std::vector<std::string>& allowed,
                                   TokenRequestRecord& record) const;

    TokenServerOptions m_options;
    TempDir m_dir;
    std::string m_certificate_path;
    std::string m_certificate_der_base64;
    EVP_PKEY* m_key = nullptr;
    mutable std::mutex m_mutex;
    std::vector<TokenRequestRecord> m_records;
    std::unique_ptr<LocalHttpServer> m_server;
};

}  // namespace kiln::test
