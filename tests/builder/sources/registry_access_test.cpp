// The CA certificates kiln trusts from its environment: SSL_CERT_FILE, SSL_CERT_DIR and Kaniko's
// /kaniko/ssl/certs (a directory made here stands in for it).

#include "builder/sources/registry_access.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

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
