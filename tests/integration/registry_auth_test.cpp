// The kiln binary against registries that demand credentials or TLS, all real processes on 127.0.0.1:
// htpasswd (Basic) auth, token (Bearer) auth with scoped accounts, a credential helper, HTTPS with a private
// CA, and mTLS. Every kiln run logs at debug level, and every run, successful or not, is checked for leaked
// secrets.

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/integration/harness.hpp"
#include "tests/support/registry_process.hpp"
#include "tests/support/test_pki.hpp"
#include "tests/support/token_server.hpp"

namespace kiln::test {
namespace {

constexpr const char* k_system_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Every kiln run is bounded, so that a hang (a stalled handshake) fails the test instead of the whole binary.
const std::vector<std::string> k_bounded = {"/usr/bin/timeout", "--kill-after=5", "90"};
// The first bytes of every JWT the token server issues (base64url of `{"alg":`): a token in kiln's output.
constexpr const char* k_jwt_marker = "eyJhbGci";
// One COPY, so that the step line shows whether the build ran.
constexpr const char* k_dockerfile = "FROM scratch\nCOPY payload.txt /payload.txt\n";
constexpr const char* k_copy_step = "COPY payload.txt /payload.txt";

std::optional<std::string> tools_unavailable_reason() {
    if (auto reason = RegistryProcess::unavailable_reason()) return reason;
    if (::access("/usr/bin/skopeo", X_OK) != 0)
        return "/usr/bin/skopeo is not installed (scripts/setup installs it)";
    if (::access(kiln_binary().c_str(), X_OK) != 0) return str_cat(kiln_binary(), " has not been built");
    return std::nullopt;
}

// A build context holding `dockerfile` and payload.txt.
Status make_context(const std::string& dir, const std::string& dockerfile) {
    KILN_TRY(make_directories(dir));
    KILN_TRY(write_file_atomic(dir + "/Dockerfile", dockerfile));
    KILN_TRY(write_file_atomic(dir + "/payload.txt", "payload of " + dir + "\n"));
    return {};
}

// kiln's whole environment: credentials only from `docker_config` (a directory, with or without config.json),
// helpers looked up in `path_prefix` first.
std::vector<std::string> kiln_environment(const std::string& docker_config,
                                          const std::string& path_prefix = "") {
    std::vector<std::string> environment = {
        "PATH=" + (path_prefix.empty() ? std::string(k_system_path) : path_prefix + ":" + k_system_path),
        "HOME=" + docker_config, "DOCKER_CONFIG=" + docker_config};
    if (const char* tmpdir = std::getenv("TMPDIR")) environment.push_back(str_cat("TMPDIR=", tmpdir));
    return environment;
}

// The digest the registry's storage holds under repository:tag, or nullopt when the tag does not exist.
std::optional<std::string> stored_tag(const RegistryProcess& registry, const std::string& repository,
                                      const std::string& tag) {
    auto link = read_file(str_cat(registry.storage_dir(), "/docker/registry/v2/repositories/", repository,
                                  "/_manifests/tags/", tag, "/current/link"),
                          1024);
    if (!link) return std::nullopt;
    return std::string(trim(*link));
}

// `skopeo inspect` of `reference` with `options` (credentials, certificates): the image as another client
// sees it. The command line may hold a password, so errors quote skopeo's stderr only.
Result<nlohmann::json> skopeo_inspect(const std::string& reference, const std::vector<std::string>& options) {
    std::vector<std::string> argv = {"skopeo", "inspect"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back("docker://" + reference);
    KILN_ASSIGN(ProcessResult result, run_process(argv));
    if (result.exit_code != 0)
        return fail(str_cat("skopeo inspect ", reference, " exited with ", result.exit_code, ": ",
                            result.stderr_bytes));
    nlohmann::json json = nlohmann::json::parse(result.stdout_bytes, nullptr, false);
    if (json.is_discarded()) return fail("skopeo inspect printed no JSON");
    return json;
}

// Which of `secrets` (the non-empty ones) appear in the output of `run`.
std::vector<std::string> leaked(const KilnRun& run, const std::vector<std::string>& secrets) {
    std::vector<std::string> found;
    for (const std::string& secret : secrets)
        if (!secret.empty() && run.output.find(secret) != std::string::npos) found.push_back(secret);
    return found;
}

// Token requests as one line each, for failure messages (records hold no secrets).
std::string describe(const std::vector<TokenRequestRecord>& records) {
    std::string text;
    for (const TokenRequestRecord& record : records)
        text += str_cat("\n  ", record.method, " ", record.grant_type.empty() ? "" : record.grant_type + " ",
                        "user=\"", record.username, "\" status=", record.status, " scopes=[",
                        join(record.scopes, " "), "] granted=[", join(record.granted, " "), "]");
    return text;
}

// What one suite shares between its tests: one registry (and its token server or PKI) and one build context.
struct SharedRegistry {
    TempDir work;
    std::string context;
    std::optional<TestPki> pki;
    std::unique_ptr<TokenServer> token_server;
    std::unique_ptr<RegistryProcess> registry;
};

Result<std::unique_ptr<SharedRegistry>> prepare_shared(const std::string& prefix) {
    auto shared = std::make_unique<SharedRegistry>();
    KILN_ASSIGN(shared->work, TempDir::create(default_temp_parent(), prefix));
    shared->context = shared->work.path() + "/context";
    KILN_TRY(make_context(shared->context, k_dockerfile));
    return shared;
}

// The suites' common part: the shared registry (made by the suite's SetUpTestSuite), a directory per test,
// and kiln runs that are checked for the suite's secrets.
class AuthTest : public ::testing::Test {
protected:
    // Sets the suite's skip reason or its shared registry (or the error that prevented it).
    static void set_up_suite(std::optional<std::string>& skip_reason, std::unique_ptr<SharedRegistry>& shared,
                             std::string& setup_error, const std::vector<std::optional<std::string>>& reasons,
                             const std::function<Result<std::unique_ptr<SharedRegistry>>()>& start) {
        for (const auto& reason : reasons)
            if (reason && !skip_reason) skip_reason = reason;
        if (skip_reason) return;
        auto started = start();
        if (started)
            shared = std::move(*started);
        else
            setup_error = started.error().message();
    }

    void set_up_test(const std::optional<std::string>& skip_reason, SharedRegistry* shared,
                     const std::string& setup_error, std::vector<std::string> secrets) {
        if (skip_reason) GTEST_SKIP() << *skip_reason;
        ASSERT_NE(shared, nullptr) << "the suite's registry did not start: " << setup_error;
        m_shared = shared;
        m_secrets = std::move(secrets);
        auto dir = TempDir::create(shared->work.path(), "case-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
    }

    const RegistryProcess& registry() const { return *m_shared->registry; }
    std::string reference(const std::string& repository_and_tag) const {
        return registry().host_port() + "/" + repository_and_tag;
    }
    std::optional<std::string> stored(const std::string& repository, const std::string& tag) const {
        return stored_tag(registry(), repository, tag);
    }

    // A DOCKER_CONFIG directory holding `config` as config.json, or none when `config` is null.
    std::string docker_config(const nlohmann::json& config = nullptr) {
        std::string dir = m_dir.path() + "/docker-" + std::to_string(++m_configs);
        EXPECT_TRUE(make_directories(dir));
        if (!config.is_null()) {
            EXPECT_TRUE(write_file_atomic(dir + "/config.json", config.dump(), 0600));
        }
        return dir;
    }
    // config.json with one `auths` entry for this registry.
    std::string docker_config_with_auth(const nlohmann::json& entry) {
        return docker_config({{"auths", {{registry().host_port(), entry}}}});
    }

    // `kiln build` of `context` (the shared one when empty) to `destination` at debug level, with `flags` and
    // `environment`. Whatever the outcome, the output must hold none of the suite's secrets.
    KilnRun build(const std::string& destination, const std::vector<std::string>& flags,
                  const std::vector<std::string>& environment, const std::string& context = "") {
        std::vector<std::string> args = {
            "build", "--context", context.empty() ? m_shared->context : context, "--destination", destination,
            "-v",    "debug"};
        args.insert(args.end(), flags.begin(), flags.end());
        KilnRun run = run_kiln(args, k_bounded, environment);
        std::vector<std::string> found = leaked(run, m_secrets);
        EXPECT_TRUE(found.empty()) << "kiln's output holds " << found.size()
                                   << " secret(s), the first: " << (found.empty() ? "" : found.front())
                                   << "\n"
                                   << run.output;
        return run;
    }

    SharedRegistry* m_shared = nullptr;
    std::vector<std::string> m_secrets;
    TempDir m_dir;
    int m_configs = 0;
};

// ---- htpasswd (Basic) ----

constexpr const char* k_basic_user = "kiln-basic";
constexpr const char* k_basic_password = "basic-Pw-5e1c7a0d93";
constexpr const char* k_wrong_password = "wrong-Pw-0b8c2d61f4";

class RegistryAuthBasic : public AuthTest {
protected:
    static void SetUpTestSuite() {
        set_up_suite(s_skip_reason, s_shared, s_setup_error,
                     {tools_unavailable_reason(), RegistryProcess::htpasswd_unavailable_reason()},
                     []() -> Result<std::unique_ptr<SharedRegistry>> {
                         KILN_ASSIGN(auto shared, prepare_shared("kiln-it-auth-basic-"));
                         KILN_ASSIGN(std::string auth,
                                     RegistryProcess::htpasswd_auth_config(
                                         shared->work.path(), {{k_basic_user, k_basic_password}}));
                         KILN_ASSIGN(shared->registry, RegistryProcess::start({.auth_config = auth}));
                         return shared;
                     });
    }
    static void TearDownTestSuite() { s_shared.reset(); }
    void SetUp() override {
        set_up_test(
            s_skip_reason, s_shared.get(), s_setup_error,
            {k_basic_password, k_wrong_password, base64_encode(str_cat(k_basic_user, ":", k_basic_password)),
             base64_encode(str_cat(k_basic_user, ":", k_wrong_password))});
    }

    std::vector<std::string> plain_http() const { return {"--insecure-registry", registry().host_port()}; }
    std::vector<std::string> basic_creds() const {
        return {"--tls-verify=false", "--creds", str_cat(k_basic_user, ":", k_basic_password)};
    }

    static inline std::optional<std::string> s_skip_reason;
    static inline std::unique_ptr<SharedRegistry> s_shared;
    static inline std::string s_setup_error;
};

TEST_F(RegistryAuthBasic, AuthFromDockerConfigPushes) {
    std::string config =
        docker_config_with_auth({{"auth", base64_encode(str_cat(k_basic_user, ":", k_basic_password))}});
    KilnRun run = build(reference("basic/auth:1"), plain_http(), kiln_environment(config));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto digest = stored("basic/auth", "1");
    ASSERT_TRUE(digest) << "no tag basic/auth:1 in the registry";
    auto inspected = skopeo_inspect(reference("basic/auth:1"), basic_creds());
    ASSERT_TRUE(inspected) << inspected.error().message();
    EXPECT_EQ((*inspected)["Digest"], *digest);
    EXPECT_EQ((*inspected)["Layers"].size(), 1u);
}

TEST_F(RegistryAuthBasic, WithoutCredentialsThePushFailsNamingTheRegistry) {
    KilnRun run = build(reference("basic/anonymous:1"), plain_http(), kiln_environment(docker_config()));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("requires a username and password"), std::string::npos) << run.output;
    EXPECT_FALSE(stored("basic/anonymous", "1")) << "an anonymous push left a tag";
}

TEST_F(RegistryAuthBasic, AWrongPasswordIsRefusedWithoutEchoingIt) {
    std::string config =
        docker_config_with_auth({{"auth", base64_encode(str_cat(k_basic_user, ":", k_wrong_password))}});
    KilnRun run = build(reference("basic/wrong:1"), plain_http(), kiln_environment(config));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("401"), std::string::npos) << run.output;
    EXPECT_FALSE(stored("basic/wrong", "1")) << "a push with a wrong password left a tag";
}

TEST_F(RegistryAuthBasic, CredentialHelperSuppliesTheCredentials) {
    // The helper answers only for this registry's host:port on stdin, as the protocol sends it, and records
    // what it was asked.
    std::string bin = m_dir.path() + "/bin";
    std::string asked = m_dir.path() + "/helper-stdin";
    ASSERT_TRUE(make_directories(bin));
    std::string script = str_cat(
        "#!/bin/sh\n"
        "server=$(cat)\n"
        "printf '%s %s' \"$1\" \"$server\" > '",
        asked,
        "'\n"
        "[ \"$1\" = get ] || { echo \"unexpected action $1\" >&2; exit 1; }\n"
        "[ \"$server\" = '",
        registry().host_port(),
        "' ] || "
        "{ echo \"unexpected server $server\" >&2; exit 1; }\n"
        "printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' "
        "\"$server\" '",
        k_basic_user, "' '", k_basic_password, "'\n");
    ASSERT_TRUE(write_file_atomic(bin + "/docker-credential-test", script, 0755));
    std::string config = docker_config({{"credHelpers", {{registry().host_port(), "test"}}}});

    KilnRun run = build(reference("basic/helper:1"), plain_http(), kiln_environment(config, bin));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(read_file(asked).value_or("(the helper never ran)"), "get " + registry().host_port());
    auto digest = stored("basic/helper", "1");
    ASSERT_TRUE(digest) << "no tag basic/helper:1 in the registry";
    auto inspected = skopeo_inspect(reference("basic/helper:1"), basic_creds());
    ASSERT_TRUE(inspected) << inspected.error().message();
    EXPECT_EQ((*inspected)["Digest"], *digest);
}

// ---- token (Bearer) ----

constexpr const char* k_pusher_password = "pusher-Pw-8d2f61ab07";
constexpr const char* k_reader_password = "reader-Pw-3c9e04f1d5";
constexpr const char* k_oauth_password = "oauth-Pw-71a5c8e2b6";
constexpr const char* k_refresh_token = "refresh-Tk-4b0d9e3a71c2";

class RegistryAuthToken : public AuthTest {
protected:
    static void SetUpTestSuite() {
        set_up_suite(
            s_skip_reason, s_shared, s_setup_error, {tools_unavailable_reason()},
            []() -> Result<std::unique_ptr<SharedRegistry>> {
                KILN_ASSIGN(auto shared, prepare_shared("kiln-it-auth-token-"));
                TokenServerOptions options;
                options.accounts = {
                    {.username = "pusher", .password = k_pusher_password, .actions = {"pull", "push"}},
                    {.username = "reader", .password = k_reader_password, .actions = {"pull"}},
                    {.username = "oauth",
                     .password = k_oauth_password,
                     .actions = {"pull", "push"},
                     .refresh_token = k_refresh_token}};
                // Nothing without credentials: every grant below is an account's.
                options.anonymous_actions = {};
                KILN_ASSIGN(shared->token_server, TokenServer::start(options));
                KILN_ASSIGN(
                    shared->registry,
                    RegistryProcess::start({.auth_config = shared->token_server->registry_auth_config()}));
                return shared;
            });
    }
    static void TearDownTestSuite() { s_shared.reset(); }
    void SetUp() override {
        set_up_test(s_skip_reason, s_shared.get(), s_setup_error,
                    {k_pusher_password, k_reader_password, k_oauth_password, k_refresh_token, k_jwt_marker,
                     base64_encode(str_cat("pusher:", k_pusher_password)),
                     base64_encode(str_cat("reader:", k_reader_password))});
    }

    const TokenServer& token_server() const { return *m_shared->token_server; }
    std::vector<std::string> plain_http() const { return {"--insecure-registry", registry().host_port()}; }
    std::string password_config(const std::string& username, const std::string& password) {
        return docker_config_with_auth({{"username", username}, {"password", password}});
    }
    // The token requests that asked for a scope of `repository`.
    std::vector<TokenRequestRecord> token_requests_for(const std::string& repository) const {
        std::vector<TokenRequestRecord> matching;
        for (const TokenRequestRecord& record : token_server().records())
            for (const std::string& scope : record.scopes)
                if (scope.starts_with("repository:" + repository + ":")) {
                    matching.push_back(record);
                    break;
                }
        return matching;
    }
    std::vector<std::string> pusher_creds() const {
        return {"--tls-verify=false", "--creds", str_cat("pusher:", k_pusher_password)};
    }

    static inline std::optional<std::string> s_skip_reason;
    static inline std::unique_ptr<SharedRegistry> s_shared;
    static inline std::string s_setup_error;
};

TEST_F(RegistryAuthToken, UsernameAndPasswordWithPushRightsPush) {
    KilnRun run = build(reference("token/pusher:1"), plain_http(),
                        kiln_environment(password_config("pusher", k_pusher_password)));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto digest = stored("token/pusher", "1");
    ASSERT_TRUE(digest) << "no tag token/pusher:1 in the registry";
    auto inspected = skopeo_inspect(reference("token/pusher:1"), pusher_creds());
    ASSERT_TRUE(inspected) << inspected.error().message();
    EXPECT_EQ((*inspected)["Digest"], *digest);
    auto pusher_granted_push = [](const TokenRequestRecord& record) {
        return record.username == "pusher" && record.status == 200 &&
               std::find(record.granted.begin(), record.granted.end(), "repository:token/pusher:pull,push") !=
                   record.granted.end();
    };
    auto requests = token_requests_for("token/pusher");
    EXPECT_TRUE(std::any_of(requests.begin(), requests.end(), pusher_granted_push))
        << "kiln never obtained a push token as pusher:" << describe(requests);
}

TEST_F(RegistryAuthToken, PullOnlyCredentialsAreRefusedBeforeTheBuild) {
    KilnRun run = build(reference("token/reader:1"), plain_http(),
                        kiln_environment(password_config("reader", k_reader_password)));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("do not allow pushing"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find(k_copy_step), std::string::npos) << "the build ran before the check:\n"
                                                               << run.output;
    EXPECT_FALSE(stored("token/reader", "1")) << "a pull-only account left a tag";
    // The refusal is the registry's, for want of the push action, not a failed login.
    auto reader_granted_pull_only = [](const TokenRequestRecord& record) {
        return record.username == "reader" && record.status == 200 && !record.granted.empty() &&
               std::all_of(record.granted.begin(), record.granted.end(), [](const std::string& granted) {
                   return granted == "repository:token/reader:pull";
               });
    };
    auto requests = token_requests_for("token/reader");
    EXPECT_TRUE(std::any_of(requests.begin(), requests.end(), reader_granted_pull_only))
        << "kiln never obtained reader's pull-only token:" << describe(requests);
}

TEST_F(RegistryAuthToken, PullOnlyCredentialsWithoutTheCheckFailAtPush) {
    std::vector<std::string> flags = plain_http();
    flags.push_back("--skip-push-permission-check");
    KilnRun run = build(reference("token/reader-late:1"), flags,
                        kiln_environment(password_config("reader", k_reader_password)));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(k_copy_step), std::string::npos) << "the build should have run:\n"
                                                               << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("token/reader-late"), std::string::npos) << run.output;
    EXPECT_FALSE(stored("token/reader-late", "1")) << "a pull-only account left a tag";
}

TEST_F(RegistryAuthToken, IdentityTokenPushesThroughTheRefreshTokenGrant) {
    KilnRun run = build(reference("token/identity:1"), plain_http(),
                        kiln_environment(docker_config_with_auth({{"identitytoken", k_refresh_token}})));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(stored("token/identity", "1")) << "no tag token/identity:1 in the registry";
    auto refresh_grant = [](const TokenRequestRecord& record) {
        return record.method == "POST" && record.grant_type == "refresh_token" &&
               record.username == "oauth" && record.status == 200;
    };
    auto requests = token_requests_for("token/identity");
    EXPECT_TRUE(std::any_of(requests.begin(), requests.end(), refresh_grant))
        << "no successful POST refresh_token grant for token/identity:" << describe(requests);
}

// ---- TLS with a private CA ----

// What TLS suites start: a PKI in the work directory and an HTTPS registry (mTLS with `client_ca`).
Result<std::unique_ptr<SharedRegistry>> start_tls(const std::string& prefix, bool client_ca) {
    KILN_ASSIGN(auto shared, prepare_shared(prefix));
    std::string pki_dir = shared->work.path() + "/pki";
    KILN_TRY(make_directories(pki_dir));
    KILN_ASSIGN(shared->pki, TestPki::create(pki_dir));
    // skopeo's --cert-dir layout: ca.crt to trust, client.cert and client.key to present.
    std::string cert_dir = shared->work.path() + "/skopeo-certs";
    KILN_TRY(make_directories(cert_dir));
    KILN_ASSIGN(std::string ca, read_file(shared->pki->ca_certificate));
    KILN_TRY(write_file_atomic(cert_dir + "/ca.crt", ca));
    if (client_ca) {
        KILN_ASSIGN(std::string certificate, read_file(shared->pki->client_certificate));
        KILN_ASSIGN(std::string key, read_file(shared->pki->client_key));
        KILN_TRY(write_file_atomic(cert_dir + "/client.cert", certificate));
        KILN_TRY(write_file_atomic(cert_dir + "/client.key", key, 0600));
    }
    KILN_ASSIGN(
        shared->registry,
        RegistryProcess::start({.tls_certificate = shared->pki->server_certificate,
                                .tls_key = shared->pki->server_key,
                                .tls_client_ca = client_ca ? shared->pki->ca_certificate : std::string()}));
    return shared;
}

class TlsTest : public AuthTest {
protected:
    const TestPki& pki() const { return *m_shared->pki; }
    std::vector<std::string> trust_ca() const {
        return {"--registry-certificate", registry().host_port() + "=" + pki().ca_certificate};
    }
    std::vector<std::string> skopeo_certs() const {
        return {"--cert-dir", m_shared->work.path() + "/skopeo-certs"};
    }
};

class RegistryAuthTls : public TlsTest {
protected:
    static void SetUpTestSuite() {
        set_up_suite(s_skip_reason, s_shared, s_setup_error,
                     {tools_unavailable_reason(), TestPki::unavailable_reason()},
                     [] { return start_tls("kiln-it-auth-tls-", false); });
    }
    static void TearDownTestSuite() { s_shared.reset(); }
    void SetUp() override { set_up_test(s_skip_reason, s_shared.get(), s_setup_error, {}); }

    static inline std::optional<std::string> s_skip_reason;
    static inline std::unique_ptr<SharedRegistry> s_shared;
    static inline std::string s_setup_error;
};

TEST_F(RegistryAuthTls, RegistryCertificateTrustsThePrivateCaForPushAndPull) {
    KilnRun base = build(reference("tls/base:1"), trust_ca(), kiln_environment(docker_config()));
    ASSERT_EQ(base.exit_code, 0) << base.output;
    ASSERT_TRUE(stored("tls/base", "1")) << "no tag tls/base:1 in the registry";

    std::string child_context = m_dir.path() + "/child";
    ASSERT_TRUE(make_context(child_context,
                             str_cat("FROM ", reference("tls/base:1"), "\nCOPY payload.txt /child.txt\n")));
    KilnRun child =
        build(reference("tls/child:1"), trust_ca(), kiln_environment(docker_config()), child_context);
    ASSERT_EQ(child.exit_code, 0) << child.output;
    auto digest = stored("tls/child", "1");
    ASSERT_TRUE(digest) << "no tag tls/child:1 in the registry";
    auto inspected = skopeo_inspect(reference("tls/child:1"), skopeo_certs());
    ASSERT_TRUE(inspected) << inspected.error().message();
    EXPECT_EQ((*inspected)["Digest"], *digest);
    EXPECT_EQ((*inspected)["Layers"].size(), 2u) << "the child should hold the pulled base layer and its own";
}

TEST_F(RegistryAuthTls, AnUntrustedCertificateFailsNamingTheRegistry) {
    KilnRun run = build(reference("tls/untrusted:1"), {}, kiln_environment(docker_config()));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("not trusted"), std::string::npos) << run.output;
    EXPECT_FALSE(stored("tls/untrusted", "1")) << "a push to an untrusted registry left a tag";
}

TEST_F(RegistryAuthTls, SslCertFileAndSslCertDirTrustThePrivateCaAsOpenSslDoes) {
    std::vector<std::string> with_file = kiln_environment(docker_config());
    with_file.push_back("SSL_CERT_FILE=" + pki().ca_certificate);
    KilnRun file = build(reference("tls/ssl-cert-file:1"), {}, with_file);
    ASSERT_EQ(file.exit_code, 0) << file.output;
    EXPECT_TRUE(stored("tls/ssl-cert-file", "1"));

    std::string dir = m_dir.path() + "/certs";
    ASSERT_TRUE(make_directories(dir));
    auto pem = read_file(pki().ca_certificate);
    ASSERT_TRUE(pem);
    ASSERT_TRUE(write_file_atomic(dir + "/private-ca.pem", *pem));
    ASSERT_TRUE(write_file_atomic(dir + "/README", "not a certificate\n"));
    std::vector<std::string> with_dir = kiln_environment(docker_config());
    with_dir.push_back("SSL_CERT_DIR=" + dir);
    KilnRun directory = build(reference("tls/ssl-cert-dir:1"), {}, with_dir);
    ASSERT_EQ(directory.exit_code, 0) << directory.output;
    EXPECT_TRUE(stored("tls/ssl-cert-dir", "1"));
}

TEST_F(RegistryAuthTls, AnSslCertFileThatCannotBeReadIsNamed) {
    std::vector<std::string> environment = kiln_environment(docker_config());
    std::string missing = m_dir.path() + "/no-such-ca.pem";
    environment.push_back("SSL_CERT_FILE=" + missing);
    KilnRun run = build(reference("tls/ssl-cert-missing:1"), {}, environment);
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("SSL_CERT_FILE=" + missing), std::string::npos) << run.output;
}

TEST_F(RegistryAuthTls, SkipTlsVerifyRegistryPushesWithoutTheCa) {
    KilnRun run =
        build(reference("tls/skip-verify:1"), {"--skip-tls-verify-registry", registry().host_port()},
              kiln_environment(docker_config()));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(stored("tls/skip-verify", "1")) << "no tag tls/skip-verify:1 in the registry";
}

TEST_F(RegistryAuthTls, AMissingCertificateFileIsNamedWithTheFlag) {
    std::string missing = m_dir.path() + "/no-such-ca.pem";
    KilnRun run = build(reference("tls/missing-ca:1"),
                        {"--registry-certificate", registry().host_port() + "=" + missing},
                        kiln_environment(docker_config()));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("--registry-certificate"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find(missing), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find(k_copy_step), std::string::npos) << "the build ran despite the bad flag:\n"
                                                               << run.output;
}

TEST_F(RegistryAuthTls, ACertificateFileWithoutPemIsNamedWithTheFlag) {
    std::string not_pem = m_dir.path() + "/not-a-ca.pem";
    ASSERT_TRUE(write_file_atomic(not_pem, "this is not a certificate\n"));
    KilnRun run =
        build(reference("tls/bad-ca:1"), {"--registry-certificate", registry().host_port() + "=" + not_pem},
              kiln_environment(docker_config()));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("--registry-certificate"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find(not_pem), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find(k_copy_step), std::string::npos) << "the build ran despite the bad flag:\n"
                                                               << run.output;
}

// ---- mutual TLS ----

class RegistryAuthMutualTls : public TlsTest {
protected:
    static void SetUpTestSuite() {
        set_up_suite(s_skip_reason, s_shared, s_setup_error,
                     {tools_unavailable_reason(), TestPki::unavailable_reason()},
                     [] { return start_tls("kiln-it-auth-mtls-", true); });
    }
    static void TearDownTestSuite() { s_shared.reset(); }
    void SetUp() override { set_up_test(s_skip_reason, s_shared.get(), s_setup_error, {}); }

    static inline std::optional<std::string> s_skip_reason;
    static inline std::unique_ptr<SharedRegistry> s_shared;
    static inline std::string s_setup_error;
};

TEST_F(RegistryAuthMutualTls, ClientCertificatePushes) {
    std::vector<std::string> flags = trust_ca();
    flags.insert(flags.end(),
                 {"--registry-client-cert",
                  str_cat(registry().host_port(), "=", pki().client_certificate, ",", pki().client_key)});
    KilnRun run = build(reference("mtls/client:1"), flags, kiln_environment(docker_config()));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto digest = stored("mtls/client", "1");
    ASSERT_TRUE(digest) << "no tag mtls/client:1 in the registry";
    auto inspected = skopeo_inspect(reference("mtls/client:1"), skopeo_certs());
    ASSERT_TRUE(inspected) << inspected.error().message();
    EXPECT_EQ((*inspected)["Digest"], *digest);
}

TEST_F(RegistryAuthMutualTls, WithoutAClientCertificateThePushFailsNamingTheRegistry) {
    KilnRun run = build(reference("mtls/anonymous:1"), trust_ca(), kiln_environment(docker_config()));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(registry().host_port()), std::string::npos) << run.output;
    EXPECT_FALSE(stored("mtls/anonymous", "1")) << "a push without a client certificate left a tag";
}

TEST_F(RegistryAuthMutualTls, WithoutAClientCertificateTheErrorIsAboutTheCertificate) {
    KilnRun run = build(reference("mtls/no-cert:1"), trust_ca(), kiln_environment(docker_config()));
    ASSERT_NE(run.exit_code, 0) << run.output;
    // The final error, not a retry's warning, must tell the user what the registry refused.
    size_t error = run.output.rfind("error: ");
    ASSERT_NE(error, std::string::npos) << run.output;
    std::string final_error = run.output.substr(error);
    EXPECT_NE(to_lower(final_error).find("certificate"), std::string::npos) << final_error;
}

}  // namespace
}  // namespace kiln::test
