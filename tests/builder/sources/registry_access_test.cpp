// The CA certificates kiln trusts from its environment: SSL_CERT_FILE, SSL_CERT_DIR and Kaniko's
// /kaniko/ssl/certs (a directory made here stands in for it).

#include "builder/sources/registry_access.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "registry/http.hpp"

namespace kiln {
namespace {

constexpr const char* k_one = "-----BEGIN CERTIFICATE-----\nONE\n-----END CERTIFICATE-----\n";
constexpr const char* k_two = "-----BEGIN CERTIFICATE-----\nTWO\n-----END CERTIFICATE-----\n";
constexpr const char* k_three = "-----BEGIN CERTIFICATE-----\nTHREE\n-----END CERTIFICATE-----";

class TrustedCertificatesTest : public ::testing::Test {
protected:
    void SetUp() override { m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-trust-test-")); }
    std::string put(const std::string& name, const std::string& text) {
        std::string path = m_dir.path() + "/" + name;
        EXPECT_TRUE(make_directories(parent_path(path)));
        EXPECT_TRUE(write_file_atomic(path, text));
        return path;
    }
    TempDir m_dir;
};

TEST_F(TrustedCertificatesTest, FileDirectoryAndKanikosDirectoryAddUp) {
    TrustEnvironment trust{.ssl_cert_file = put("bundle.pem", k_one),
                           .ssl_cert_dir = parent_path(put("dir/b.pem", k_two)),
                           .kaniko_certs = parent_path(put("kaniko/ca-certificates.crt", k_three))};
    put("dir/notes.txt", "no certificate here\n");
    // c_rehash links a certificate under its hash: it counts once.
    ASSERT_EQ(::symlink("b.pem", (m_dir.path() + "/dir/0a1b2c3d.0").c_str()), 0);
    auto bundle = trusted_certificates(trust);
    ASSERT_TRUE(bundle) << bundle.error().message();
    EXPECT_EQ(*bundle, std::string(k_one) + k_two + k_three + "\n");
}

TEST_F(TrustedCertificatesTest, NothingSetAndNoKanikoDirectoryTrustsNothingMore) {
    auto bundle = trusted_certificates(TrustEnvironment{.kaniko_certs = m_dir.path() + "/absent"});
    ASSERT_TRUE(bundle);
    EXPECT_EQ(*bundle, "");
}

// Many images set SSL_CERT_FILE and SSL_CERT_DIR to the system's own trust; reading it again adds nothing.
TEST_F(TrustedCertificatesTest, TheSystemsOwnBundleAndDirectoryAddNothing) {
    const SystemTrust& system = system_trust();
    if (system.file.empty() || system.directory.empty() || !path_exists(system.file))
        GTEST_SKIP() << "curl here has no built-in CA bundle and directory";
    ASSERT_EQ(::symlink(system.directory.c_str(), (m_dir.path() + "/certs-link").c_str()), 0);
    auto bundle = trusted_certificates(TrustEnvironment{
        .ssl_cert_file = system.file, .ssl_cert_dir = m_dir.path() + "/certs-link", .kaniko_certs = ""});
    ASSERT_TRUE(bundle) << bundle.error().message();
    EXPECT_EQ(*bundle, "");
    // A copy of the bundle elsewhere is the user's own file, and counts.
    auto text = read_file(system.file, 16 << 20);
    ASSERT_TRUE(text);
    auto copied = trusted_certificates(TrustEnvironment{.ssl_cert_file = put("copy.pem", *text), .kaniko_certs = ""});
    ASSERT_TRUE(copied) << copied.error().message();
    EXPECT_FALSE(copied->empty());
}

TEST_F(TrustedCertificatesTest, AVariableNamingNothingUsableIsAnErrorNamingIt) {
    auto missing = trusted_certificates(TrustEnvironment{.ssl_cert_file = m_dir.path() + "/nope.pem",
                                                         .kaniko_certs = ""});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("SSL_CERT_FILE"), std::string::npos) << missing.error().message();
    auto not_pem = trusted_certificates(TrustEnvironment{.ssl_cert_file = put("x.pem", "hello"), .kaniko_certs = ""});
    ASSERT_FALSE(not_pem);
    EXPECT_NE(not_pem.error().message().find("no PEM certificate"), std::string::npos);
    auto no_dir = trusted_certificates(TrustEnvironment{.ssl_cert_dir = m_dir.path() + "/nodir", .kaniko_certs = ""});
    ASSERT_FALSE(no_dir);
    EXPECT_NE(no_dir.error().message().find("SSL_CERT_DIR"), std::string::npos) << no_dir.error().message();
}

}  // namespace
}  // namespace kiln
