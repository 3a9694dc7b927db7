#pragma once
// A token server for the registry's Bearer flow (distribution's `auth: token`), in-process on 127.0.0.1: it
// grants every anonymous request exactly the scopes it asks for, as RS256 JWTs the registry trusts through a
// self-signed certificate. Credential checks (Basic on the token request) are for issue #5 to add.

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/local_http_server.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace kiln::test {

// Which JSON field carries the token: registries' token servers use either.
enum class TokenField { token, access_token };

struct TokenServerOptions {
    std::string service = "kiln-test-registry";
    std::string issuer = "kiln-test-issuer";
    TokenField field = TokenField::token;
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
    // Every token request served, in order; their `scope` and `service` query parameters say what was asked.
    std::vector<LocalRequest> requests() const { return m_server->requests(); }

private:
    TokenServer() = default;
    LocalResponse issue(const LocalRequest& request) const;

    TokenServerOptions m_options;
    TempDir m_dir;
    std::string m_certificate_path;
    std::string m_certificate_der_base64;
    EVP_PKEY* m_key = nullptr;
    std::unique_ptr<LocalHttpServer> m_server;
};

}  // namespace kiln::test
