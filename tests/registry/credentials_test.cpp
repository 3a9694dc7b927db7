// DockerConfigCredentials: config.json as the docker CLI reads it, credential helpers run as real programs (shell
// scripts in a temporary PATH directory), and an identity token carried through to the OAuth2 grant.
#include "registry/credentials.hpp"

#include <fcntl.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

using test::LocalHttpServer;
using test::LocalRequest;
using test::LocalResponse;

// Every secret in these tests contains this, so that one search finds a leak of any of them.
constexpr std::string_view k_secret_marker = "s3cret";

// The standard test helper: answers keyed by the server URL it must receive on stdin; each run appends a line to
// `count_file` when one is given.
std::string test_helper(const std::string& count_file = "") {
    return str_cat(R"(#!/bin/sh
[ "$1" = get ] || { echo "unexpected action: $1" >&2; exit 2; }
url=$(cat)
count_file=')", count_file, R"('
[ -n "$count_file" ] && echo run >> "$count_file"
case "$url" in
  "https://index.docker.io/v1/") printf '{"ServerURL":"%s","Username":"hub-user","Secret":"hub-s3cret"}\n' "$url" ;;
  "127.0.0.1:5000") printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-s3cret"}' "$url" ;;
  "ghcr.io") printf '{"ServerURL":"%s","Username":"gh-user","Secret":"gh-s3cret"}' "$url" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
)");
}

class CredentialsTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto dir = TempDir::create(default_temp_parent(), "kiln-credentials-test-");
        ASSERT_TRUE(dir) << dir.error().message();
        m_dir = std::move(*dir);
        ASSERT_TRUE(make_directories(bin_dir()));
        set_log_sink([this](LogLevel, std::string_view message) {
            std::lock_guard lock(m_log_mutex);
            m_log += std::string(message) + "\n";
        });
    }
    void TearDown() override {
        set_log_sink(nullptr);
        EXPECT_EQ(m_log.find(k_secret_marker), std::string::npos) << "a secret was logged:\n" << m_log;
    }

    std::string bin_dir() const { return m_dir.path() + "/bin"; }
    // A PATH with the test helpers first and the system's tools (for the scripts' sh, cat, printf) after.
    std::string helper_path() const { return bin_dir() + ":/usr/bin:/bin"; }

    void write_helper(const std::string& name, std::string_view script) {
        ASSERT_TRUE(write_file_atomic(bin_dir() + "/docker-credential-" + name, script, 0755));
    }
    std::string write_config(std::string_view json, const std::string& relative = "config.json") {
        std::string path = m_dir.path() + "/" + relative;
        size_t slash = path.rfind('/');
        EXPECT_TRUE(make_directories(path.substr(0, slash)));
        EXPECT_TRUE(write_file_atomic(path, json));
        return path;
    }
    std::shared_ptr<DockerConfigCredentials> load(std::string_view json) {
        auto credentials = DockerConfigCredentials::from_file(write_config(json), helper_path());
        EXPECT_TRUE(credentials) << credentials.error().message();
        return credentials ? *credentials : nullptr;
    }

    TempDir m_dir;
    std::mutex m_log_mutex;
    std::string m_log;
};

void expect_no_secret(const Error& error) {
    EXPECT_EQ(error.message().find(k_secret_marker), std::string::npos) << error.message();
}

// --- config.json forms ---

TEST_F(CredentialsTest, AuthFieldIsBase64UserColonPassword) {
    auto credentials = load(str_cat(R"({"auths":{"https://index.docker.io/v1/":{"auth":")",
                                    base64_encode("hub-user:pa:ss-s3cret"), R"("}}})"));
    auto credential = credentials->credential_for("docker.io");
    ASSERT_TRUE(credential) << credential.error().message();
    ASSERT_TRUE(credential->has_value());
    EXPECT_EQ((*credential)->username, "hub-user");
    EXPECT_EQ((*credential)->password, "pa:ss-s3cret");  // split at the first colon only
    EXPECT_EQ((*credential)->identity_token, "");
}

TEST_F(CredentialsTest, UsernameAndPasswordFields) {
    auto credentials = load(R"({"auths":{"ghcr.io":{"username":"gh-user","password":"gh-s3cret"}}})");
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_TRUE(credential && credential->has_value());
    EXPECT_EQ((*credential)->username, "gh-user");
    EXPECT_EQ((*credential)->password, "gh-s3cret");
}

TEST_F(CredentialsTest, IdentityTokenField) {
    auto credentials = load(R"({"auths":{"reg.example:5000":{"auth":"","identitytoken":"refresh-s3cret"}}})");
    auto credential = credentials->credential_for("reg.example:5000");
    ASSERT_TRUE(credential && credential->has_value());
    EXPECT_EQ((*credential)->identity_token, "refresh-s3cret");
    EXPECT_EQ((*credential)->username, "");
}

TEST_F(CredentialsTest, UnknownRegistryAndEmptyEntryAreAnonymous) {
    auto credentials = load(R"({"auths":{"ghcr.io":{},"quay.io":{"auth":""}}})");
    for (std::string_view registry : {"ghcr.io", "quay.io", "docker.io", "127.0.0.1:5000"}) {
        auto credential = credentials->credential_for(registry);
        ASSERT_TRUE(credential) << credential.error().message();
        EXPECT_FALSE(credential->has_value()) << registry;
    }
}

TEST_F(CredentialsTest, MatchesOnHostAndPortOnly) {
    auto credentials = load(R"({"auths":{"http://reg.example:5000/v2/":{"username":"u","password":"p-s3cret"}}})");
    EXPECT_TRUE(credentials->credential_for("reg.example:5000")->has_value());
    EXPECT_FALSE(credentials->credential_for("reg.example")->has_value());
    EXPECT_FALSE(credentials->credential_for("reg.example:5001")->has_value());
    EXPECT_FALSE(credentials->credential_for("other.reg.example:5000")->has_value());
}

TEST_F(CredentialsTest, DockerHubKeyTheCliWritesWinsOverAliases) {
    auto credentials = load(R"({"auths":{
        "docker.io":{"username":"alias","password":"a-s3cret"},
        "https://index.docker.io/v1/":{"username":"canonical","password":"c-s3cret"},
        "registry-1.docker.io":{"username":"alias2","password":"b-s3cret"}}})");
    auto credential = credentials->credential_for("docker.io");
    ASSERT_TRUE(credential && credential->has_value());
    EXPECT_EQ((*credential)->username, "canonical");
}

struct KeyCase {
    std::string key;
    std::string normalized;
};

void PrintTo(const KeyCase& value, std::ostream* out) { *out << value.key; }

class RegistryKeyTest : public ::testing::TestWithParam<KeyCase> {};

TEST_P(RegistryKeyTest, NormalizesToHostAndPort) {
    EXPECT_EQ(normalize_registry_key(GetParam().key), GetParam().normalized);
}

INSTANTIATE_TEST_SUITE_P(Table, RegistryKeyTest,
                         ::testing::Values(KeyCase{"https://index.docker.io/v1/", "docker.io"},
                                           KeyCase{"index.docker.io", "docker.io"},
                                           KeyCase{"docker.io", "docker.io"},
                                           KeyCase{"registry-1.docker.io", "docker.io"},
                                           KeyCase{"https://registry-1.docker.io/v2/", "docker.io"},
                                           KeyCase{"https://ghcr.io", "ghcr.io"},
                                           KeyCase{"ghcr.io", "ghcr.io"},
                                           KeyCase{"http://host:5000/v2/", "host:5000"},
                                           KeyCase{"host:5000", "host:5000"},
                                           KeyCase{"127.0.0.1:5000", "127.0.0.1:5000"},
                                           KeyCase{"HTTPS://Quay.IO/", "quay.io"},
                                           KeyCase{" reg.example ", "reg.example"}));

TEST(CredentialHelperServerUrlTest, DockerHubGetsTheIndexUrlOthersTheirHost) {
    EXPECT_EQ(credential_helper_server_url("docker.io"), "https://index.docker.io/v1/");
    EXPECT_EQ(credential_helper_server_url("index.docker.io"), "https://index.docker.io/v1/");
    EXPECT_EQ(credential_helper_server_url("ghcr.io"), "ghcr.io");
    EXPECT_EQ(credential_helper_server_url("127.0.0.1:5000"), "127.0.0.1:5000");
}

// --- malformed files: the error names the file and the key, never a value ---

TEST_F(CredentialsTest, InvalidJsonNamesTheFileButQuotesNothing) {
    std::string path = write_config(R"({"auths":{"ghcr.io":{"auth":"dXNlcjpzM2NyZXQ=", "password":"p-s3cret)");
    auto credentials = DockerConfigCredentials::from_file(path, helper_path());
    ASSERT_FALSE(credentials);
    EXPECT_NE(credentials.error().message().find(path), std::string::npos) << credentials.error().message();
    EXPECT_NE(credentials.error().message().find("not valid JSON"), std::string::npos);
    expect_no_secret(credentials.error());
}

struct MalformedCase {
    std::string name;
    std::string json;
    std::string expected;  // part of the message
};

void PrintTo(const MalformedCase& value, std::ostream* out) { *out << value.name; }

class MalformedConfigTest : public CredentialsTest, public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedConfigTest, IsAnErrorNamingFileAndKey) {
    std::string path = write_config(GetParam().json);
    auto credentials = DockerConfigCredentials::from_file(path, helper_path());
    ASSERT_FALSE(credentials);
    const std::string& message = credentials.error().message();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(GetParam().expected), std::string::npos) << message;
    expect_no_secret(credentials.error());
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedConfigTest,
    ::testing::Values(
        MalformedCase{"BadBase64", R"({"auths":{"ghcr.io":{"auth":"not base64! s3cret"}}})",
                      R"(auths["ghcr.io"].auth is not valid base64)"},
        MalformedCase{"AuthWithoutColon",
                      str_cat(R"({"auths":{"ghcr.io":{"auth":")", base64_encode("only-s3cret"), R"("}}})"),
                      R"(auths["ghcr.io"].auth is not base64 of "username:password")"},
        MalformedCase{"PasswordNotAString", R"({"auths":{"ghcr.io":{"username":"u","password":["s3cret"]}}})",
                      R"(auths["ghcr.io"].password is not a string)"},
        MalformedCase{"AuthsNotAnObject", R"({"auths":["s3cret"]})", R"("auths" is not an object)"},
        MalformedCase{"EntryNotAnObject", R"({"auths":{"ghcr.io":"s3cret"}})", R"(auths["ghcr.io"] is not an object)"},
        MalformedCase{"HelperWithAPath", R"({"credHelpers":{"ghcr.io":"../../tmp/evil"}})",
                      R"(credHelpers["ghcr.io"] is not a plain helper name)"},
        MalformedCase{"StoreWithAPath", R"({"credsStore":"/bin/evil"})", R"("credsStore" is not a plain helper name)"},
        MalformedCase{"NotAnObject", R"(["s3cret"])", "not a JSON object"}),
    [](const ::testing::TestParamInfo<MalformedCase>& param_info) { return param_info.param.name; });

TEST_F(CredentialsTest, MissingExplicitFileIsAnError) {
    auto credentials = DockerConfigCredentials::from_file(m_dir.path() + "/absent.json", helper_path());
    ASSERT_FALSE(credentials);
    EXPECT_NE(credentials.error().message().find("absent.json"), std::string::npos);
}

// --- where config.json is found ---

constexpr std::string_view k_ghcr_config_user = R"({"auths":{"ghcr.io":{"username":"USER","password":"p-s3cret"}}})";

std::string config_for(std::string_view user) {
    std::string json(k_ghcr_config_user);
    return json.replace(json.find("USER"), 4, user);
}

std::string ghcr_user(DockerConfigCredentials& credentials) {
    auto credential = credentials.credential_for("ghcr.io");
    if (!credential) return "error: " + credential.error().message();
    return credential->has_value() ? (*credential)->username : "anonymous";
}

TEST_F(CredentialsTest, DockerConfigWinsOverHomeAndKaniko) {
    write_config(config_for("from-docker-config"), "docker-config/config.json");
    write_config(config_for("from-home"), "home/.docker/config.json");
    write_config(config_for("from-kaniko"), "kaniko/.docker/config.json");
    CredentialEnvironment environment{.docker_config = m_dir.path() + "/docker-config",
                                      .home = m_dir.path() + "/home",
                                      .path = helper_path(),
                                      .kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "from-docker-config");
    EXPECT_EQ((*credentials)->source(), m_dir.path() + "/docker-config/config.json");
}

TEST_F(CredentialsTest, DockerConfigWithoutAFileIsAnonymousEvenWhenHomeHasOne) {
    write_config(config_for("from-home"), "home/.docker/config.json");
    CredentialEnvironment environment{.docker_config = m_dir.path() + "/empty-docker-config",
                                      .home = m_dir.path() + "/home",
                                      .kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "anonymous");
    EXPECT_EQ((*credentials)->source(), "");
}

TEST_F(CredentialsTest, HomeWinsOverKaniko) {
    write_config(config_for("from-home"), "home/.docker/config.json");
    write_config(config_for("from-kaniko"), "kaniko/.docker/config.json");
    CredentialEnvironment environment{.home = m_dir.path() + "/home",
                                      .kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "from-home");
    EXPECT_EQ((*credentials)->source(), m_dir.path() + "/home/.docker/config.json");
}

TEST_F(CredentialsTest, KanikoWhenHomeHasNoConfig) {
    write_config(config_for("from-kaniko"), "kaniko/.docker/config.json");
    CredentialEnvironment environment{.home = m_dir.path() + "/home",
                                      .kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "from-kaniko");
    EXPECT_EQ((*credentials)->source(), m_dir.path() + "/kaniko/.docker/config.json");
}

TEST_F(CredentialsTest, NoFileAnywhereIsAnonymous) {
    CredentialEnvironment environment{.kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "anonymous");
    EXPECT_EQ((*credentials)->source(), "");
}

// Root's kiln re-executed as an unprivileged id reads the config root opened for it, however often, and no path.
TEST_F(CredentialsTest, AHandedConfigIsReadFromItsDescriptorEachTime) {
    std::string path = write_config(config_for("handed"), "root-only/config.json");
    write_config(config_for("from-home"), "home/.docker/config.json");
    UniqueFd handed(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(handed);
    ASSERT_TRUE(remove_tree(m_dir.path() + "/root-only"));  // the path itself is out of reach
    CredentialEnvironment environment{.home = m_dir.path() + "/home",
                                      .handed_config_fd = handed.get(),
                                      .handed_config_path = path};
    for (int time = 0; time < 2; ++time) {
        auto credentials = DockerConfigCredentials::from_environment(environment);
        ASSERT_TRUE(credentials) << credentials.error().message();
        EXPECT_EQ(ghcr_user(**credentials), "handed");
        EXPECT_EQ((*credentials)->source(), path);
    }
}

// Where root found no config, none is looked for: its home may be one the unprivileged id cannot search.
TEST_F(CredentialsTest, HandedNoConfigIsAnonymous) {
    write_config(config_for("from-home"), "home/.docker/config.json");
    CredentialEnvironment environment{.home = m_dir.path() + "/home", .handed_no_config = true};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_TRUE(credentials) << credentials.error().message();
    EXPECT_EQ(ghcr_user(**credentials), "anonymous");
}

TEST_F(CredentialsTest, MalformedFileFoundInTheEnvironmentIsAnError) {
    std::string path = write_config("{", "home/.docker/config.json");
    CredentialEnvironment environment{.home = m_dir.path() + "/home",
                                      .kaniko_config = m_dir.path() + "/kaniko/.docker/config.json"};
    auto credentials = DockerConfigCredentials::from_environment(environment);
    ASSERT_FALSE(credentials);
    EXPECT_NE(credentials.error().message().find(path), std::string::npos) << credentials.error().message();
}

// --- credential helpers ---

TEST_F(CredentialsTest, HelperGetsTheServerUrlAndAnswersJson) {
    write_helper("test", test_helper());
    auto credentials = load(R"({"credsStore":"test"})");
    auto hub = credentials->credential_for("docker.io");
    ASSERT_TRUE(hub) << hub.error().message();
    ASSERT_TRUE(hub->has_value());
    EXPECT_EQ((*hub)->username, "hub-user");
    EXPECT_EQ((*hub)->password, "hub-s3cret");
    auto ghcr = credentials->credential_for("ghcr.io");
    ASSERT_TRUE(ghcr && ghcr->has_value()) << (ghcr ? "" : ghcr.error().message());
    EXPECT_EQ((*ghcr)->username, "gh-user");
}

TEST_F(CredentialsTest, HelperTokenUsernameMeansIdentityToken) {
    write_helper("test", test_helper());
    auto credentials = load(R"({"credHelpers":{"127.0.0.1:5000":"test"}})");
    auto credential = credentials->credential_for("127.0.0.1:5000");
    ASSERT_TRUE(credential) << credential.error().message();
    ASSERT_TRUE(credential->has_value());
    EXPECT_EQ((*credential)->identity_token, "refresh-s3cret");
    EXPECT_EQ((*credential)->username, "");
    EXPECT_EQ((*credential)->password, "");
}

TEST_F(CredentialsTest, HelperCredentialsNotFoundIsAnonymous) {
    write_helper("test", test_helper());
    auto credentials = load(R"({"credsStore":"test"})");
    auto credential = credentials->credential_for("quay.io");
    ASSERT_TRUE(credential) << credential.error().message();
    EXPECT_FALSE(credential->has_value());
}

TEST_F(CredentialsTest, PrecedenceIsCredHelpersThenCredsStoreThenAuths) {
    write_helper("per-registry", R"(#!/bin/sh
cat >/dev/null
echo '{"Username":"from-cred-helpers","Secret":"h-s3cret"}'
)");
    write_helper("store", R"(#!/bin/sh
cat >/dev/null
echo '{"Username":"from-creds-store","Secret":"st-s3cret"}'
)");
    std::string auths = R"("auths":{"ghcr.io":{"username":"from-auths","password":"a-s3cret"},
                                     "quay.io":{"username":"from-auths","password":"a-s3cret"}})";
    auto with_store = load(str_cat(R"({"credHelpers":{"ghcr.io":"per-registry"},"credsStore":"store",)", auths, "}"));
    EXPECT_EQ(ghcr_user(*with_store), "from-cred-helpers");
    auto quay = with_store->credential_for("quay.io");
    ASSERT_TRUE(quay && quay->has_value());
    EXPECT_EQ((*quay)->username, "from-creds-store");

    auto without_store = load(str_cat(R"({"credHelpers":{"ghcr.io":"per-registry"},)", auths, "}"));
    EXPECT_EQ(ghcr_user(*without_store), "from-cred-helpers");
    quay = without_store->credential_for("quay.io");
    ASSERT_TRUE(quay && quay->has_value());
    EXPECT_EQ((*quay)->username, "from-auths");
}

TEST_F(CredentialsTest, FailingHelperNamesHelperRegistryAndItsStderrButNoSecret) {
    write_helper("broken", R"(#!/bin/sh
cat >/dev/null
printf 'keychain locked\n\033[31mtry again\n' >&2
echo '{"Username":"u","Secret":"leaked-s3cret"}'
exit 3
)");
    auto credentials = load(R"({"credHelpers":{"ghcr.io":"broken"}})");
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    const std::string& message = credential.error().message();
    EXPECT_NE(message.find("docker-credential-broken"), std::string::npos) << message;
    EXPECT_NE(message.find("ghcr.io"), std::string::npos) << message;
    EXPECT_NE(message.find("status 3"), std::string::npos) << message;
    EXPECT_NE(message.find("keychain locked"), std::string::npos) << message;
    EXPECT_EQ(message.find('\033'), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    expect_no_secret(credential.error());
}

TEST_F(CredentialsTest, HelperErrorOnStdoutIsQuoted) {
    write_helper("plain", R"(#!/bin/sh
cat >/dev/null
echo "error getting credentials - err: exit status 1, out: no such profile"
exit 1
)");
    auto credentials = load(R"({"credsStore":"plain"})");
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    EXPECT_NE(credential.error().message().find("no such profile"), std::string::npos)
        << credential.error().message();
}

TEST_F(CredentialsTest, HelperAnsweringGarbageIsAnErrorWithoutItsOutput) {
    write_helper("garbage", R"(#!/bin/sh
cat >/dev/null
echo '{"Username":"u","Secret":"half-s3cret'
)");
    auto credentials = load(R"({"credsStore":"garbage"})");
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    EXPECT_NE(credential.error().message().find("not a JSON object"), std::string::npos)
        << credential.error().message();
    expect_no_secret(credential.error());
}

TEST_F(CredentialsTest, HelperRunningPastItsTimeoutIsKilled) {
    write_helper("slow", R"(#!/bin/sh
cat >/dev/null
exec sleep 30
)");
    auto credentials = load(R"({"credsStore":"slow"})");
    credentials->set_helper_limits({.timeout = std::chrono::milliseconds(300)});
    auto started = std::chrono::steady_clock::now();
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    EXPECT_NE(credential.error().message().find("docker-credential-slow for ghcr.io"), std::string::npos)
        << credential.error().message();
    EXPECT_NE(credential.error().message().find("did not finish within 300 ms"), std::string::npos)
        << credential.error().message();
}

TEST_F(CredentialsTest, HelperWritingTooMuchIsAnError) {
    write_helper("chatty", R"(#!/bin/sh
cat >/dev/null
yes
)");
    auto credentials = load(R"({"credsStore":"chatty"})");
    credentials->set_helper_limits({.output_limit = 4096});
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    EXPECT_NE(credential.error().message().find("wrote more than 4096 bytes"), std::string::npos)
        << credential.error().message();
}

TEST_F(CredentialsTest, HelperMissingFromPathIsAnError) {
    auto credentials = load(R"({"credsStore":"absent"})");
    auto credential = credentials->credential_for("ghcr.io");
    ASSERT_FALSE(credential);
    EXPECT_NE(credential.error().message().find("docker-credential-absent is not an executable in PATH"),
              std::string::npos)
        << credential.error().message();
}

TEST_F(CredentialsTest, HelperIsLookedUpInTheGivenPathOnly) {
    write_helper("test", test_helper());
    auto credentials = DockerConfigCredentials::from_file(write_config(R"({"credsStore":"test"})"), "/usr/bin:/bin");
    ASSERT_TRUE(credentials);
    EXPECT_FALSE((*credentials)->credential_for("ghcr.io"));
}

TEST_F(CredentialsTest, HelperRunsOncePerRegistryAcrossThreads) {
    std::string count_file = m_dir.path() + "/count";
    write_helper("test", test_helper(count_file));
    auto credentials = load(R"({"credsStore":"test"})");
    std::vector<std::thread> threads;
    std::atomic<int> answered{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] {
            auto credential = credentials->credential_for(i % 2 ? "ghcr.io" : "https://ghcr.io/");
            if (credential && credential->has_value() && (*credential)->username == "gh-user") ++answered;
        });
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(answered.load(), 4);
    auto runs = read_file(count_file);
    ASSERT_TRUE(runs) << runs.error().message();
    EXPECT_EQ(*runs, "run\n");
}

// --- identity token end to end: config.json → Authenticator → OAuth2 POST ---

std::map<std::string, std::string> parse_form(std::string_view body) {
    std::map<std::string, std::string> fields;
    for (const std::string& pair : split(body, '&')) {
        size_t equals = pair.find('=');
        std::string name = pair.substr(0, equals);
        std::string value = equals == std::string::npos ? "" : pair.substr(equals + 1);
        for (char& c : value)
            if (c == '+') c = ' ';
        EXPECT_EQ(fields.count(name), 0u) << "repeated form field " << name;
        fields[name] = test::percent_decode(value);
    }
    return fields;
}

TEST_F(CredentialsTest, IdentityTokenIsExchangedWithAnOAuth2Post) {
    auto server = LocalHttpServer::start([](const LocalRequest& request) {
        if (request.method != "POST") return LocalResponse{.status = 405};
        return LocalResponse{.headers = {{"Content-Type", "application/json"}},
                             .body = R"({"access_token":"access-1","refresh_token":"next-refresh","expires_in":300})"};
    });
    ASSERT_TRUE(server) << server.error().message();
    std::string refresh_token = "refresh/s3cret+&= x";
    auto credentials = load(str_cat(R"({"auths":{"https://reg.example:5000/v2/":{"identitytoken":")", refresh_token,
                                    R"("}}})"));
    Authenticator authenticator(credentials);
    HttpClient http;
    auto challenges = parse_www_authenticate(str_cat(R"(Bearer realm=")", (*server)->url("/oauth/token"),
                                                     R"(",service="reg.example",scope="repository:team/app:pull")"));
    ASSERT_TRUE(challenges);
    std::string scope = "repository:team/app:pull,push repository:team/base:pull";
    auto authorization = authenticator.authorize(http, "reg.example:5000", scope, *challenges);
    ASSERT_TRUE(authorization) << authorization.error().message();
    EXPECT_EQ(*authorization, "Bearer access-1");
    EXPECT_EQ(authenticator.cached("reg.example:5000", scope), "Bearer access-1");

    std::vector<LocalRequest> requests = (*server)->requests();
    ASSERT_EQ(requests.size(), 1u);
    const LocalRequest& request = requests[0];
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/oauth/token");  // nothing in the URL
    EXPECT_EQ(request.header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_FALSE(request.header("Authorization"));
    auto form = parse_form(request.body);
    EXPECT_EQ(form["grant_type"], "refresh_token");
    EXPECT_EQ(form["refresh_token"], refresh_token);
    EXPECT_EQ(form["service"], "reg.example");
    EXPECT_EQ(form["client_id"], "kiln");
    EXPECT_EQ(form["scope"], "repository:team/app:pull,push repository:team/base:pull repository:team/app:pull");
}

}  // namespace
}  // namespace kiln
