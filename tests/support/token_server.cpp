#include "tests/support/token_server.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <ctime>

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

// "repository:team/app:pull,push" → {"type":"repository","name":"team/app","actions":["pull","push"]}.
nlohmann::json access_entry(std::string_view scope) {
    size_t first = scope.find(':');
    size_t last = scope.rfind(':');
    if (first == std::string_view::npos || first == last) return nullptr;
    return {{"type", std::string(scope.substr(0, first))},
            {"name", std::string(scope.substr(first + 1, last - first - 1))},
            {"actions", split(scope.substr(last + 1), ',')}};
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

LocalResponse TokenServer::issue(const LocalRequest& request) const {
    if (request.method != "GET" || request.path() != "/token") return {.status = 404, .body = "{}"};
    std::int64_t now = std::time(nullptr);
    nlohmann::json access = nlohmann::json::array();
    for (const std::string& scope : request.query("scope"))
        for (const std::string& one : split(scope, ' '))
            if (nlohmann::json entry = access_entry(one); !entry.is_null()) access.push_back(entry);
    unsigned char random[16];
    RAND_bytes(random, sizeof random);
    nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {m_certificate_der_base64}}};
    nlohmann::json claims = {{"iss", m_options.issuer},
                             {"sub", ""},
                             {"aud", m_options.service},
                             {"exp", now + 300},
                             {"nbf", now - 60},
                             {"iat", now},
                             {"jti", base64url(std::string_view(reinterpret_cast<char*>(random), sizeof random))},
                             {"access", access}};
    std::string signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
    auto signature = sign_rs256(m_key, signing_input);
    if (!signature) return {.status = 500, .body = signature.error().message()};
    std::string token = signing_input + "." + base64url(*signature);
    std::string field = m_options.field == TokenField::token ? "token" : "access_token";
    nlohmann::json body = {{field, token}, {"expires_in", 300}};
    return {.status = 200, .headers = {{"Content-Type", "application/json"}}, .body = body.dump()};
}

}  // namespace kiln::test
