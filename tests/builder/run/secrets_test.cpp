// --secret values as docker build takes them, reading a secret, and the flags that carry them.

#include "builder/run/secrets.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "builder/cli/flags.hpp"
#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

SecretSource parsed(const std::string& value) {
    auto secret = parse_secret_flag(value);
    EXPECT_TRUE(secret) << value << ": " << secret.error().message();
    return secret ? *secret : SecretSource{};
}

TEST(SecretFlag, FileSourceInEverySpelling) {
    for (const char* value : {"id=token,src=/run/token.txt", "id=token,source=/run/token.txt",
                              "type=file,id=token,src=/run/token.txt"}) {
        SecretSource secret = parsed(value);
        EXPECT_EQ(secret.id, "token") << value;
        EXPECT_EQ(secret.file, "/run/token.txt") << value;
        EXPECT_TRUE(secret.env.empty()) << value;
    }
}

TEST(SecretFlag, EnvironmentSource) {
    EXPECT_EQ(parsed("id=token,env=GITHUB_TOKEN").env, "GITHUB_TOKEN");
    EXPECT_EQ(parsed("type=env,id=token,src=GITHUB_TOKEN").env, "GITHUB_TOKEN");
    EXPECT_EQ(parsed("id=NPM_TOKEN").env, "NPM_TOKEN");
}

TEST(SecretFlag, IdDefaultsToTheFilesBaseName) {
    EXPECT_EQ(parsed("src=/etc/creds/aws").id, "aws");
}

TEST(SecretFlag, MalformedValuesAreRefused) {
    EXPECT_FALSE(parse_secret_flag("token"));
    EXPECT_FALSE(parse_secret_flag("id=token,colour=red"));
    EXPECT_FALSE(parse_secret_flag("type=vault,id=token"));
    EXPECT_FALSE(parse_secret_flag("env=VAR"));
}

TEST(SecretFlag, TheLastSecretWithAnIdWins) {
    std::vector<SecretSource> secrets = {parsed("id=a,src=/one"), parsed("id=b,src=/two"),
                                         parsed("id=a,src=/three")};
    EXPECT_EQ(find_secret(secrets, "a")->file, "/three");
    EXPECT_FALSE(find_secret(secrets, "c"));
}

TEST(SecretFlag, ReadingNamesTheSourceButNeverTheValue) {
    auto dir = TempDir::create(default_temp_parent(), "kiln-secret-test-");
    ASSERT_TRUE(dir);
    ASSERT_TRUE(write_file_atomic(dir->path() + "/token", "s3cret", 0600));
    EnvironmentLookup no_variables = [](std::string_view) { return std::optional<std::string>(); };
    EXPECT_EQ(read_secret(parsed("id=t,src=" + dir->path() + "/token"), no_variables).value_or(""), "s3cret");
    auto missing = read_secret(parsed("id=t,src=" + dir->path() + "/absent"), no_variables);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("absent"), std::string::npos) << missing.error().message();

    EnvironmentLookup one_variable = [](std::string_view name) {
        return name == "KILN_SECRET_TEST_VALUE" ? std::optional<std::string>("env-s3cret") : std::nullopt;
    };
    EXPECT_EQ(read_secret(parsed("id=t,env=KILN_SECRET_TEST_VALUE"), one_variable).value_or(""), "env-s3cret");
    auto unset = read_secret(parsed("id=t,env=KILN_SECRET_TEST_VALUE"), no_variables);
    ASSERT_FALSE(unset);
    EXPECT_NE(unset.error().message().find("KILN_SECRET_TEST_VALUE"), std::string::npos);
}

TEST(SecretFlag, BuildFlagsCollectSecretsAndTheCacheDirectory) {
    auto options = parse_build_flags(
        {"--no-push", "--secret", "id=a,src=/a", "--secret=id=b,env=B", "--cache-dir", "/var/cache/kiln"});
    ASSERT_TRUE(options) << options.error().message();
    ASSERT_EQ(options->secrets.size(), 2u);
    EXPECT_EQ(options->secrets[0].file, "/a");
    EXPECT_EQ(options->secrets[1].env, "B");
    EXPECT_EQ(options->cache_dir, "/var/cache/kiln");
    EXPECT_FALSE(parse_build_flags({"--no-push", "--secret", "nonsense"}));
}

}  // namespace
}  // namespace kiln
