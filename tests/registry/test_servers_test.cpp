// The servers the registry tests run against, checked on their own: a registry over TLS and mTLS with a test
// CA, with htpasswd Basic auth, the token server's accounts and grants, and the fault-injecting proxy.
// Requests go through the curl command, independent of the client under test, except where kiln's client
// pulls through the proxy.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "registry/client.hpp"
#include "tests/registry/test_image.hpp"
#include "tests/support/fault_proxy.hpp"
#include "tests/support/random_bytes.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/token_server.hpp"

namespace kiln {
namespace {

using namespace std::chrono_literals;
using test::pseudo_random_bytes;

constexpr const char* k_curl = "/usr/bin/curl";

// What curl reports of one exchange.
struct CurlExchange {
    int exit_code = 0;  // curl's: 0, 7 refused, 18 partial, 28 timeout, 35/56 TLS or reset, 60 untrusted …
    int status = 0;     // 0 when no response arrived
    std::string headers;
    std::string body;
    std::string error;
};

std::optional<std::string> curl_unavailable_reason() {
    if (::access(k_curl, X_OK) != 0) return str_cat(k_curl, " is not installed (the tests' HTTP client)");
    return std::nullopt;
}

// Runs curl with `arguments` plus the URL, keeping the response headers and body apart (bodies may be
// binary).
Result<CurlExchange> curl(const std::vector<std::string>& arguments, const std::string& url) {
    KILN_ASSIGN(TempDir dir, TempDir::create(default_temp_parent(), "kiln-curl-"));
    std::vector<std::string> argv = {k_curl, "-sS", "--noproxy", "*", "-w", "%{http_code}\n"};
    argv.insert(argv.end(), {"-o", dir.path() + "/body", "-D", dir.path() + "/headers"});
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    argv.push_back(url);
    KILN_ASSIGN(ProcessResult result, run_process(argv));
    CurlExchange exchange{.exit_code = result.exit_code, .error = result.stderr_bytes};
    // A status line per URL (with a second URL, its body comes to stdout too); the last line is the status.
    std::uint64_t status = 0;
    std::vector<std::string> statuses = split(trim(result.stdout_bytes), '\n');
    if (!statuses.empty() && parse_uint64(statuses.back(), status))
        exchange.status = static_cast<int>(status);
    exchange.headers = read_file(dir.path() + "/headers").value_or("");
    exchange.body = read_file(dir.path() + "/body").value_or("");
    return exchange;
}

// The value of header `name` in curl's dump of the last response, or "".
std::string header_value(const CurlExchange& exchange, std::string_view name) {
    std::string value;
    for (const std::string& line : split(exchange.headers, '\n')) {
        size_t colon = line.find(':');
        if (colon != std::string::npos && to_lower(trim(line.substr(0, colon))) == to_lower(name))
            value = std::string(trim(line.substr(colon + 1)));
    }
    return value;
}

// The claims of a JWT, unverified.
nlohmann::json jwt_claims(const std::string& token) {
    std::vector<std::string> parts = split(token, '.');
    if (parts.size() != 3) return nullptr;
    std::string payload = parts[1];
    for (char& c : payload) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (payload.size() % 4) payload += '=';
    std::optional<std::string> json = base64_decode(payload);
    return json ? nlohmann::json::parse(*json, nullptr, false) : nlohmann::json();
}

#define SKIP_UNLESS_AVAILABLE(reason_expression)                          \
    do {                                                                  \
        if (auto reason_ = (reason_expression)) GTEST_SKIP() << *reason_; \
    } while (0)

// --- TLS --------------------------------------------------------------------------------------------------

class TlsRegistryTest : public ::testing::Test {
protected:
    void start(bool require_client_certificate) {
        SKIP_UNLESS_AVAILABLE(test::RegistryProcess::unavailable_reason());
        SKIP_UNLESS_AVAILABLE(test::TestPki::unavailable_reason());
        SKIP_UNLESS_AVAILABLE(curl_unavailable_reason());
        auto dir = TempDir::create(default_temp_parent(), "kiln-pki-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
        auto pki = test::TestPki::create(m_dir.path());
        ASSERT_TRUE(pki) << pki.error().message();
        m_pki = *pki;
        test::RegistryProcessOptions options{.tls_certificate = m_pki.server_certificate,
                                             .tls_key = m_pki.server_key};
        if (require_client_certificate) options.tls_client_ca = m_pki.ca_certificate;
        auto registry = test::RegistryProcess::start(options);
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
    }

    TempDir m_dir;
    test::TestPki m_pki;
    std::unique_ptr<test::RegistryProcess> m_registry;
};

TEST_F(TlsRegistryTest, AnswersOverHttpsWithTheTestCa) {
    start(false);
    if (IsSkipped() || HasFatalFailure()) return;
    EXPECT_TRUE(m_registry->tls());
    EXPECT_EQ(m_registry->url("/v2/"), str_cat("https://", m_registry->host_port(), "/v2/"));
    for (std::string host : {"127.0.0.1", "localhost"}) {
        auto exchange = curl({"--cacert", m_pki.ca_certificate},
                             str_cat("https://", host, ":", m_registry->port(), "/v2/"));
        ASSERT_TRUE(exchange) << exchange.error().message();
        EXPECT_EQ(exchange->exit_code, 0) << host << ": " << exchange->error;
        EXPECT_EQ(exchange->status, 200) << host;
    }
}

TEST_F(TlsRegistryTest, IsNotTrustedWithoutTheTestCa) {
    start(false);
    if (IsSkipped() || HasFatalFailure()) return;
    // Only the system bundle: the test CA is in none.
    auto exchange = curl({}, m_registry->url("/v2/"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->exit_code, 60) << exchange->error;  // peer certificate cannot be authenticated
    EXPECT_EQ(exchange->status, 0);
}

TEST_F(TlsRegistryTest, MutualTlsRefusesAClientWithoutCertificate) {
    start(true);
    if (IsSkipped() || HasFatalFailure()) return;
    auto anonymous = curl({"--cacert", m_pki.ca_certificate}, m_registry->url("/v2/"));
    ASSERT_TRUE(anonymous) << anonymous.error().message();
    EXPECT_NE(anonymous->exit_code, 0);
    EXPECT_EQ(anonymous->status, 0) << anonymous->body;
    EXPECT_NE(m_registry->log().find("didn't provide a certificate"), std::string::npos) << m_registry->log();
}

TEST_F(TlsRegistryTest, MutualTlsAcceptsTheTestClientCertificate) {
    start(true);
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = curl(
        {"--cacert", m_pki.ca_certificate, "--cert", m_pki.client_certificate, "--key", m_pki.client_key},
        m_registry->url("/v2/"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->exit_code, 0) << exchange->error;
    EXPECT_EQ(exchange->status, 200);
}

// --- htpasswd ---------------------------------------------------------------------------------------------

class HtpasswdRegistryTest : public ::testing::Test {
protected:
    void SetUp() override {
        SKIP_UNLESS_AVAILABLE(test::RegistryProcess::unavailable_reason());
        SKIP_UNLESS_AVAILABLE(test::RegistryProcess::htpasswd_unavailable_reason());
        SKIP_UNLESS_AVAILABLE(curl_unavailable_reason());
        auto dir = TempDir::create(default_temp_parent(), "kiln-htpasswd-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
        auto auth = test::RegistryProcess::htpasswd_auth_config(
            m_dir.path(), {{"alice", "alice secret"}, {"bob", "b:o+b"}});
        ASSERT_TRUE(auth) << auth.error().message();
        auto registry = test::RegistryProcess::start({.auth_config = *auth});
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
    }

    TempDir m_dir;
    std::unique_ptr<test::RegistryProcess> m_registry;
};

TEST_F(HtpasswdRegistryTest, RefusesARequestWithoutCredentials) {
    auto exchange = curl({}, m_registry->url("/v2/"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 401);
    EXPECT_EQ(header_value(*exchange, "WWW-Authenticate"), "Basic realm=\"kiln-test-registry\"");
}

TEST_F(HtpasswdRegistryTest, RefusesAWrongPassword) {
    auto exchange = curl({"-u", "alice:not alice's"}, m_registry->url("/v2/"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 401);
}

TEST_F(HtpasswdRegistryTest, AcceptsEveryUserWithTheirPassword) {
    for (std::string credentials : {"alice:alice secret", "bob:b:o+b"}) {
        auto exchange = curl({"-u", credentials}, m_registry->url("/v2/"));
        ASSERT_TRUE(exchange) << exchange.error().message();
        EXPECT_EQ(exchange->status, 200) << credentials.substr(0, credentials.find(':'));
    }
}

// --- token server -----------------------------------------------------------------------------------------

class TokenServerTest : public ::testing::Test {
protected:
    void start(std::vector<std::string> anonymous_actions = {"pull", "push"}) {
        SKIP_UNLESS_AVAILABLE(curl_unavailable_reason());
        test::TokenServerOptions options;
        options.accounts = {{.username = "reader", .password = "read only", .actions = {"pull"}},
                            {.username = "writer",
                             .password = "w+r:ite",
                             .actions = {"pull", "push"},
                             .refresh_token = "writer-refresh-token"}};
        options.anonymous_actions = std::move(anonymous_actions);
        auto tokens = test::TokenServer::start(std::move(options));
        ASSERT_TRUE(tokens) << tokens.error().message();
        m_tokens = std::move(*tokens);
    }

    std::string token_url(std::string_view scope) const {
        return str_cat(m_tokens->realm(), "?service=", m_tokens->service(), "&scope=", scope);
    }

    // POSTs an OAuth2 form to the token endpoint.
    Result<CurlExchange> post_form(const std::vector<std::pair<std::string, std::string>>& fields) const {
        std::vector<std::string> arguments;
        for (const auto& [name, value] : fields)
            arguments.insert(arguments.end(), {"--data-urlencode", name + "=" + value});
        return curl(arguments, m_tokens->realm());
    }

    std::unique_ptr<test::TokenServer> m_tokens;
};

TEST_F(TokenServerTest, GrantsOnlyTheAccountsActions) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = curl({"-u", "reader:read only"}, token_url("repository:team/app:pull,push"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    ASSERT_EQ(exchange->status, 200) << exchange->body;
    nlohmann::json claims = jwt_claims(nlohmann::json::parse(exchange->body).at("token").get<std::string>());
    EXPECT_EQ(claims["sub"], "reader");
    EXPECT_EQ(claims["access"],
              nlohmann::json::parse(R"([{"type":"repository","name":"team/app","actions":["pull"]}])"));
    ASSERT_EQ(m_tokens->records().size(), 1u);
    EXPECT_EQ(m_tokens->records()[0].granted, std::vector<std::string>{"repository:team/app:pull"});
    EXPECT_EQ(m_tokens->authorized_requests(), 1);
}

TEST_F(TokenServerTest, OmitsAScopeTheAccountMayDoNothingIn) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = curl({"-u", "reader:read only"}, token_url("repository:team/app:push"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    ASSERT_EQ(exchange->status, 200) << exchange->body;
    nlohmann::json claims = jwt_claims(nlohmann::json::parse(exchange->body).at("token").get<std::string>());
    EXPECT_EQ(claims["access"], nlohmann::json::array());
}

TEST_F(TokenServerTest, RejectsAWrongPassword) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = curl({"-u", "writer:wrong"}, token_url("repository:team/app:pull"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 401);
    nlohmann::json body = nlohmann::json::parse(exchange->body, nullptr, false);
    EXPECT_EQ(body["errors"][0]["code"], "UNAUTHORIZED") << exchange->body;
    ASSERT_EQ(m_tokens->records().size(), 1u);
    EXPECT_EQ(m_tokens->records()[0].status, 401);
    EXPECT_EQ(m_tokens->records()[0].username, "");
}

TEST_F(TokenServerTest, AnonymousRequestsGetOnlyTheAnonymousActions) {
    start({"pull"});
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = curl({}, token_url("repository:team/app:pull,push"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    ASSERT_EQ(exchange->status, 200) << exchange->body;
    nlohmann::json claims = jwt_claims(nlohmann::json::parse(exchange->body).at("token").get<std::string>());
    EXPECT_EQ(claims["sub"], "");
    EXPECT_EQ(claims["access"][0]["actions"], nlohmann::json::parse(R"(["pull"])"));
    EXPECT_EQ(m_tokens->authorized_requests(), 0);
}

TEST_F(TokenServerTest, AcceptsTheRefreshTokenGrant) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = post_form({{"grant_type", "refresh_token"},
                               {"refresh_token", "writer-refresh-token"},
                               {"service", m_tokens->service()},
                               {"scope", "repository:team/app:pull,push"},
                               {"client_id", "kiln"}});
    ASSERT_TRUE(exchange) << exchange.error().message();
    ASSERT_EQ(exchange->status, 200) << exchange->body;
    nlohmann::json body = nlohmann::json::parse(exchange->body);
    EXPECT_EQ(body["refresh_token"], "writer-refresh-token");
    EXPECT_EQ(body["expires_in"], 300);
    nlohmann::json claims = jwt_claims(body.at("access_token").get<std::string>());
    EXPECT_EQ(claims["sub"], "writer");
    EXPECT_EQ(claims["access"][0]["actions"], nlohmann::json::parse(R"(["pull","push"])"));
    ASSERT_EQ(m_tokens->records().size(), 1u);
    EXPECT_EQ(m_tokens->records()[0].grant_type, "refresh_token");
}

TEST_F(TokenServerTest, RefusesAnUnknownRefreshToken) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    auto exchange = post_form({{"grant_type", "refresh_token"},
                               {"refresh_token", "not-a-token"},
                               {"service", m_tokens->service()},
                               {"scope", "repository:team/app:pull"}});
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 401);
    EXPECT_EQ(nlohmann::json::parse(exchange->body, nullptr, false)["error"], "invalid_grant")
        << exchange->body;
}

TEST_F(TokenServerTest, PasswordGrantDecodesTheForm) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    // "+" and ":" in the password survive form encoding; "+" must not turn into a space.
    auto exchange = post_form({{"grant_type", "password"},
                               {"username", "writer"},
                               {"password", "w+r:ite"},
                               {"service", m_tokens->service()},
                               {"scope", "repository:team/app:push"}});
    ASSERT_TRUE(exchange) << exchange.error().message();
    ASSERT_EQ(exchange->status, 200) << exchange->body;
    nlohmann::json body = nlohmann::json::parse(exchange->body);
    EXPECT_EQ(jwt_claims(body.at("access_token").get<std::string>())["sub"], "writer");
    EXPECT_EQ(body["refresh_token"], "writer-refresh-token");
}

// The registry enforces what the token grants: a pull-only account's token cannot start an upload.
TEST_F(TokenServerTest, RegistryRefusesAPushWithAPullOnlyToken) {
    start();
    if (IsSkipped() || HasFatalFailure()) return;
    SKIP_UNLESS_AVAILABLE(test::RegistryProcess::unavailable_reason());
    auto registry = test::RegistryProcess::start({.auth_config = m_tokens->registry_auth_config()});
    ASSERT_TRUE(registry) << registry.error().message();
    auto upload_with = [&](const std::string& credentials) -> int {
        auto token = curl({"-u", credentials}, token_url("repository:team/app:pull,push"));
        if (!token || token->status != 200) return -1;
        std::string bearer = nlohmann::json::parse(token->body).at("token").get<std::string>();
        auto upload = curl({"-X", "POST", "-H", "Authorization: Bearer " + bearer},
                           (*registry)->url("/v2/team/app/blobs/uploads/"));
        return upload ? upload->status : -1;
    };
    EXPECT_EQ(upload_with("reader:read only"), 401);
    EXPECT_EQ(upload_with("writer:w+r:ite"), 202);
}

// --- pull-through registry ------------------------------------------------------------------------------

TEST(PullThroughRegistryTest, ServesTheUpstreamsImages) {
    SKIP_UNLESS_AVAILABLE(test::RegistryProcess::unavailable_reason());
    auto upstream = test::RegistryProcess::start();
    ASSERT_TRUE(upstream) << upstream.error().message();
    auto mirror = test::RegistryProcess::start({.proxy_remote_url = (*upstream)->url("")});
    ASSERT_TRUE(mirror) << mirror.error().message();
    RegistryClientOptions options;
    options.plain_http.add((*upstream)->host_port());
    options.plain_http.add((*mirror)->host_port());
    RegistryClient client(std::move(options));
    test::TestImage image = test::make_test_image(Platform::parse("linux/amd64").value(), "upstream layer");
    auto pushed = test::push_test_image(
        client, Reference::parse((*upstream)->host_port() + "/library/base:v1").value(), image);
    ASSERT_TRUE(pushed) << pushed.error().message();

    Reference through_mirror = Reference::parse((*mirror)->host_port() + "/library/base:v1").value();
    auto manifest = client.get_manifest(through_mirror);
    ASSERT_TRUE(manifest) << manifest.error().message() << "\n" << (*mirror)->log();
    EXPECT_EQ(manifest->bytes, image.manifest_bytes);
    StringWriter layer;
    auto fetched = client.fetch_blob(through_mirror, image.layer, layer);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(layer.bytes(), image.layer_bytes);
}

// --- fault proxy ------------------------------------------------------------------------------------------

class FaultProxyTest : public ::testing::Test {
protected:
    void SetUp() override {
        SKIP_UNLESS_AVAILABLE(test::RegistryProcess::unavailable_reason());
        SKIP_UNLESS_AVAILABLE(curl_unavailable_reason());
        auto registry = test::RegistryProcess::start();
        ASSERT_TRUE(registry) << registry.error().message();
        m_registry = std::move(*registry);
        auto proxy = test::FaultProxy::start(m_registry->host_port());
        ASSERT_TRUE(proxy) << proxy.error().message();
        m_proxy = std::move(*proxy);
        RegistryClientOptions options;
        options.plain_http.add(m_registry->host_port());
        options.plain_http.add(m_proxy->host_port());
        options.retry.attempts = 1;  // the proxy's faults must reach the test, not be retried away
        m_client = std::make_unique<RegistryClient>(std::move(options));
        // A blob of several MiB, pushed directly: large enough to span many socket reads and writes.
        m_blob_bytes = pseudo_random_bytes(3 << 20, 2463534242u);
        m_blob = test::describe(media_type::oci_layer, m_blob_bytes);
        StringReader source(m_blob_bytes);
        auto pushed = m_client->push_blob(direct("team/app"), m_blob, source);
        ASSERT_TRUE(pushed) << pushed.error().message();
    }

    void TearDown() override {
        if (HasFailure() && m_proxy) std::cerr << "--- proxy log ---\n" << join(m_proxy->log(), "\n") << "\n";
    }

    Reference direct(std::string_view path) const {
        return Reference::parse(m_registry->host_port() + "/" + std::string(path)).value();
    }
    Reference proxied(std::string_view path) const {
        return Reference::parse(m_proxy->host_port() + "/" + std::string(path)).value();
    }
    std::string blob_url() const {
        return str_cat("http://", m_proxy->host_port(), "/v2/team/app/blobs/", m_blob.digest.str());
    }
    Result<CurlExchange> get_blob(std::vector<std::string> arguments = {}) const {
        return curl(arguments, blob_url());
    }
    // Starts an upload to team/upload through the proxy, then PUTs `bytes` in one request (curl, so that the
    // request is exactly this whatever kiln's upload strategy).
    Result<CurlExchange> put_blob(const std::string& bytes, const Digest& digest) const {
        KILN_ASSIGN(CurlExchange started, curl({"-X", "POST"}, str_cat("http://", m_proxy->host_port(),
                                                                       "/v2/team/upload/blobs/uploads/")));
        std::string location = header_value(started, "Location");
        if (started.status != 202 || location.empty())
            return fail(str_cat("starting the upload answered ", started.status, ": ", started.body));
        if (location.starts_with("/")) location = str_cat("http://", m_proxy->host_port(), location);
        KILN_ASSIGN(TempDir dir, TempDir::create(default_temp_parent(), "kiln-upload-"));
        KILN_TRY(write_file_atomic(dir.path() + "/blob", bytes));
        std::string separator = location.find('?') == std::string::npos ? "?" : "&";
        return curl({"-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary",
                     "@" + dir.path() + "/blob"},
                    location + separator + "digest=" + digest.str());
    }

    std::unique_ptr<test::RegistryProcess> m_registry;
    std::unique_ptr<test::FaultProxy> m_proxy;
    std::unique_ptr<RegistryClient> m_client;
    std::string m_blob_bytes;
    Descriptor m_blob;
};

TEST_F(FaultProxyTest, UnfaultedPushAndPullPassThroughByteIdentically) {
    test::TestImage image =
        test::make_test_image(Platform::parse("linux/amd64").value(), pseudo_random_bytes(1 << 20, 7));
    auto pushed = test::push_test_image(*m_client, proxied("team/through:v1"), image);
    ASSERT_TRUE(pushed) << pushed.error().message();

    auto manifest = m_client->get_manifest(direct("team/through:v1"));
    ASSERT_TRUE(manifest) << manifest.error().message();
    EXPECT_EQ(manifest->bytes, image.manifest_bytes);
    StringWriter layer;
    auto fetched = m_client->fetch_blob(proxied("team/app"), m_blob, layer);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_TRUE(layer.bytes() == m_blob_bytes);
    EXPECT_EQ(m_proxy->faults_injected(), 0);
    // The uploads really went through the proxy: the registry's Locations pointed back at it.
    std::vector<std::string> log = m_proxy->log();
    EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& line) {
        return line.starts_with("PUT /v2/team/through/blobs/uploads/") && line.ends_with(" -> 201");
    })) << join(log, "\n");
}

TEST_F(FaultProxyTest, HeadKeepsTheContentLengthOfTheBodyItLacks) {
    // Twice on one keep-alive connection: a stray body after the first answer would garble the second.
    auto head = get_blob({"--head", blob_url()});
    ASSERT_TRUE(head) << head.error().message();
    EXPECT_EQ(head->exit_code, 0) << head->error;
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(header_value(*head, "Content-Length"), str_cat(m_blob_bytes.size()));
    EXPECT_EQ(header_value(*head, "Docker-Content-Digest"), m_blob.digest.str());
    EXPECT_EQ(m_proxy->requests_seen(), 2);
}

TEST_F(FaultProxyTest, ServesParallelKeepAliveConnections) {
    // More transfers at once than kiln's default concurrency, each twice, so that pooled connections are
    // reused.
    constexpr int k_threads = 6;
    std::vector<std::thread> threads;
    std::vector<std::string> failures(k_threads);
    for (int i = 0; i < k_threads; ++i)
        threads.emplace_back([&, i] {
            for (int round = 0; round < 2; ++round) {
                StringWriter sink;
                auto fetched = m_client->fetch_blob(proxied("team/app"), m_blob, sink);
                if (!fetched)
                    failures[i] = fetched.error().message();
                else if (sink.bytes() != m_blob_bytes)
                    failures[i] = "different bytes";
            }
        });
    for (std::thread& thread : threads) thread.join();
    for (int i = 0; i < k_threads; ++i) EXPECT_EQ(failures[i], "") << "transfer " << i;
    EXPECT_GE(m_proxy->requests_seen(), 2 * k_threads);
}

TEST_F(FaultProxyTest, Status503IsInjectedExactlyTimesWithRetryAfter) {
    m_proxy->set_rules({{.fault = test::Fault::status_503,
                         .method = "GET",
                         .path_contains = "/blobs/",
                         .times = 2,
                         .retry_after_seconds = 7}});
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto exchange = get_blob();
        ASSERT_TRUE(exchange) << exchange.error().message();
        EXPECT_EQ(exchange->status, 503) << attempt;
        EXPECT_EQ(header_value(*exchange, "Retry-After"), "7");
        EXPECT_EQ(nlohmann::json::parse(exchange->body, nullptr, false)["errors"][0]["code"], "UNAVAILABLE");
    }
    auto exchange = get_blob();
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 200);
    EXPECT_TRUE(exchange->body == m_blob_bytes);
    EXPECT_EQ(m_proxy->faults_injected(), 2);
    EXPECT_EQ(m_proxy->faults_injected(test::Fault::status_503), 2);
}

TEST_F(FaultProxyTest, Status429AppliesOnlyToMatchingRequests) {
    m_proxy->set_rules({{.fault = test::Fault::status_429, .method = "HEAD", .times = -1}});
    auto get = get_blob();
    ASSERT_TRUE(get) << get.error().message();
    EXPECT_EQ(get->status, 200);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto head = get_blob({"--head"});
        ASSERT_TRUE(head) << head.error().message();
        EXPECT_EQ(head->status, 429) << attempt;
        EXPECT_EQ(header_value(*head, "Retry-After"), "1");
    }
    EXPECT_EQ(m_proxy->faults_injected(test::Fault::status_429), 3);
}

TEST_F(FaultProxyTest, ResetMidBodyCutsTheDownloadOnce) {
    m_proxy->set_rules({{.fault = test::Fault::reset_mid_body, .path_contains = "/blobs/sha256:"}});
    auto reset = get_blob();
    ASSERT_TRUE(reset) << reset.error().message();
    EXPECT_EQ(reset->exit_code, 56) << reset->error;  // failure receiving: connection reset
    EXPECT_LT(reset->body.size(), m_blob_bytes.size());
    auto again = get_blob();
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->exit_code, 0) << again->error;
    EXPECT_TRUE(again->body == m_blob_bytes);
    EXPECT_EQ(m_proxy->faults_injected(), 1);
}

TEST_F(FaultProxyTest, ResetMidBodyCutsAnUploadBeforeTheRegistrySeesIt) {
    std::string bytes = pseudo_random_bytes(1 << 20, 99);
    Digest digest = Digest::of_bytes(bytes);
    m_proxy->set_rules({{.fault = test::Fault::reset_mid_body, .method = "PUT"}});
    auto put = put_blob(bytes, digest);
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_TRUE(put->exit_code == 55 || put->exit_code == 56) << put->exit_code << ": " << put->error;
    EXPECT_EQ(m_proxy->faults_injected(test::Fault::reset_mid_body), 1);
    std::vector<std::string> log = m_proxy->log();
    ASSERT_FALSE(log.empty());
    EXPECT_TRUE(log.back().ends_with("reset mid request body (injected reset_mid_body)")) << log.back();
    auto exists = m_client->blob_exists(direct("team/upload"), digest);
    ASSERT_TRUE(exists) << exists.error().message();
    EXPECT_FALSE(*exists);
}

TEST_F(FaultProxyTest, TruncateBodyKeepsTheFullContentLength) {
    m_proxy->set_rules({{.fault = test::Fault::truncate_body, .path_contains = "/blobs/"}});
    auto truncated = get_blob();
    ASSERT_TRUE(truncated) << truncated.error().message();
    EXPECT_EQ(truncated->exit_code, 18) << truncated->error;  // partial file
    EXPECT_EQ(header_value(*truncated, "Content-Length"), str_cat(m_blob_bytes.size()));
    EXPECT_EQ(truncated->body.size(), m_blob_bytes.size() / 2);
    EXPECT_EQ(m_proxy->faults_injected(), 1);
}

TEST_F(FaultProxyTest, FlipByteChangesExactlyOneByteOfTheDownload) {
    m_proxy->set_rules({{.fault = test::Fault::flip_byte, .path_contains = "/blobs/"}});
    auto flipped = get_blob();
    ASSERT_TRUE(flipped) << flipped.error().message();
    EXPECT_EQ(flipped->status, 200);
    ASSERT_EQ(flipped->body.size(), m_blob_bytes.size());
    size_t differences = 0;
    for (size_t i = 0; i < m_blob_bytes.size(); ++i) differences += flipped->body[i] != m_blob_bytes[i];
    EXPECT_EQ(differences, 1u);
    // kiln's client notices.
    StringWriter sink;
    m_proxy->set_rules({{.fault = test::Fault::flip_byte, .path_contains = "/blobs/"}});
    EXPECT_FALSE(m_client->fetch_blob(proxied("team/app"), m_blob, sink));
    EXPECT_EQ(m_proxy->faults_injected(), 2);
}

TEST_F(FaultProxyTest, FlipByteInAnUploadIsCaughtByTheRegistry) {
    std::string bytes = pseudo_random_bytes(1 << 16, 5);
    Digest digest = Digest::of_bytes(bytes);
    m_proxy->set_rules({{.fault = test::Fault::flip_byte, .method = "PUT"}});
    auto put = put_blob(bytes, digest);
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ(put->status, 400);
    EXPECT_NE(put->body.find("DIGEST_INVALID"), std::string::npos) << put->body;
    EXPECT_EQ(m_proxy->faults_injected(test::Fault::flip_byte), 1);
}

TEST_F(FaultProxyTest, StallHoldsOneConnectionWhileOthersProceed) {
    m_proxy->set_rules({{.fault = test::Fault::stall, .path_contains = "/blobs/", .stall = 30s}});
    Result<CurlExchange> stalled = fail("not run");
    std::thread stalled_client([&] { stalled = get_blob({"--max-time", "3"}); });
    // Once the stall has begun, other connections go through.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (m_proxy->faults_injected() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    auto other = get_blob();
    stalled_client.join();
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_EQ(other->status, 200);
    EXPECT_TRUE(other->body == m_blob_bytes);
    ASSERT_TRUE(stalled) << stalled.error().message();
    EXPECT_EQ(stalled->exit_code, 28) << stalled->error;  // operation timed out
    EXPECT_EQ(stalled->body.size(), m_blob_bytes.size() / 2);
}

TEST_F(FaultProxyTest, DestructionEndsAStallAtOnce) {
    m_proxy->set_rules({{.fault = test::Fault::stall, .path_contains = "/blobs/", .stall = 60s}});
    Result<CurlExchange> stalled = fail("not run");
    // The URL is taken here: the client thread must not read m_proxy, which this thread resets.
    std::string url = blob_url();
    std::thread stalled_client([&, url] { stalled = curl({"--max-time", "30"}, url); });
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (m_proxy->faults_injected() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    ASSERT_EQ(m_proxy->faults_injected(), 1);
    auto started = std::chrono::steady_clock::now();
    m_proxy.reset();
    auto destruction = std::chrono::steady_clock::now() - started;
    stalled_client.join();
    EXPECT_LT(destruction, 2s);
    ASSERT_TRUE(stalled) << stalled.error().message();
    EXPECT_NE(stalled->exit_code, 0);
    EXPECT_NE(stalled->exit_code, 28) << "the stall outlived the proxy";
}

TEST_F(FaultProxyTest, ChunkedRequestBodiesAreRefused) {
    auto exchange = curl({"-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", "abc"},
                         str_cat("http://", m_proxy->host_port(), "/v2/team/app/blobs/uploads/"));
    ASSERT_TRUE(exchange) << exchange.error().message();
    EXPECT_EQ(exchange->status, 501);
}

}  // namespace
}  // namespace kiln
