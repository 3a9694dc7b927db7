#include "images/image_config.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

// Every field ImageConfig models, set to something other than its default.
ImageConfig full_config() {
    ImageConfig config;
    config.created = "2015-10-31T22:22:56.015925234Z";
    config.author = "Alyssa P. Hacker <alyspdev@example.com>";
    config.architecture = "arm64";
    config.os = "linux";
    config.variant = "v8";
    config.os_version = "6.1";
    config.os_features = {"feature-a", "feature-b"};
    RunConfig& run = config.config;
    run.user = "alice:staff";
    run.exposed_ports = {"8080/tcp", "53/udp"};
    run.env = {"PATH=/usr/bin:/bin", "ZED=last", "ALPHA=first", "EMPTY="};
    run.entrypoint = std::vector<std::string>{"/bin/my-app", "--flag"};
    run.cmd = std::vector<std::string>{};
    run.volumes = {"/var/data", "/var/log/app"};
    run.working_dir = "/home/alice";
    run.labels = {{"com.example.b", "2"}, {"com.example.a", "1 & <2>"}};
    run.stop_signal = "SIGTERM";
    run.shell = std::vector<std::string>{"/bin/bash", "-c"};
    run.on_build = {"RUN echo child", "COPY . /src"};
    run.healthcheck = HealthConfig{.test = {"CMD-SHELL", "curl -f http://localhost/"},
                                   .interval_ns = 30'000'000'000,
                                   .timeout_ns = 5'000'000'000,
                                   .start_period_ns = 1'000'000'000,
                                   .start_interval_ns = 2'000'000'000,
                                   .retries = 3};
    run.args_escaped = true;
    config.diff_ids = {Digest::of_bytes("layer one"), Digest::of_bytes("layer two")};
    config.history = {
        History{.created = "2015-10-31T22:22:54Z", .created_by = "ADD file:a in /", .author = "a", .comment = "c"},
        History{.created = "2015-10-31T22:22:55Z", .created_by = "CMD [\"sh\"]", .empty_layer = true},
        History{.created_by = "RUN apk add curl"},
    };
    return config;
}

TEST(ImageConfigParse, RoundTripsEveryModelledField) {
    ImageConfig config = full_config();
    auto parsed = ImageConfig::parse(config.serialize());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->config, config.config);
    EXPECT_EQ(parsed->history, config.history);
    EXPECT_EQ(*parsed, config);
}

TEST(ImageConfigParse, KeepsEnvOrderAndDistinguishesEmptyFromAbsentCmd) {
    ImageConfig config = full_config();
    auto parsed = ImageConfig::parse(config.serialize());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->config.env, config.config.env);
    ASSERT_TRUE(parsed->config.cmd.has_value());  // CMD [] resets the inherited command
    EXPECT_TRUE(parsed->config.cmd->empty());
    config.config.cmd.reset();
    auto without = ImageConfig::parse(config.serialize());
    ASSERT_TRUE(without);
    EXPECT_FALSE(without->config.cmd.has_value());
}

TEST(ImageConfigSerialize, IsByteStableAcrossRoundTrips) {
    std::string first = full_config().serialize();
    auto parsed = ImageConfig::parse(first);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->serialize(), first);
    EXPECT_EQ(full_config().serialize(), first);
}

TEST(ImageConfigSerialize, WritesDockerFieldNames) {
    std::string bytes = full_config().serialize();
    for (const char* field : {R"("ExposedPorts":{"53/udp":{},"8080/tcp":{}})", R"("Volumes":{"/var/data":{})",
                              R"("Healthcheck":{"Interval":30000000000,)", R"("rootfs":{"diff_ids":[")",
                              R"("type":"layers")", R"("os.features":["feature-a")", R"("empty_layer":true)"})
        EXPECT_NE(bytes.find(field), std::string::npos) << field << " in " << bytes;
}

TEST(ImageConfigParse, TreatsDockerNullsAsAbsent) {
    auto parsed = ImageConfig::parse(
        R"({"architecture":"amd64","os":"linux","config":{"Cmd":null,"Entrypoint":null,"Volumes":null,)"
        R"("OnBuild":null,"Labels":{},"Env":null,"Hostname":"x"},"rootfs":{"type":"layers","diff_ids":[]}})");
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_FALSE(parsed->config.cmd.has_value());
    EXPECT_FALSE(parsed->config.entrypoint.has_value());
    EXPECT_TRUE(parsed->config.volumes.empty());
    EXPECT_TRUE(parsed->diff_ids.empty());
}

struct BadConfig {
    const char* why;
    const char* bytes;
    const char* message;
};

TEST(ImageConfigParse, RejectsInvalidDocumentsWithAMessage) {
    const BadConfig cases[] = {
        {"non-JSON", "{", "not valid JSON"},
        {"no rootfs", R"({"architecture":"amd64","os":"linux"})", "no rootfs"},
        {"wrong rootfs type", R"({"os":"linux","rootfs":{"type":"layered","diff_ids":[]}})", "\"layered\""},
        {"bad diff_id", R"({"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1234"]}})", "invalid digest"},
        {"diff_ids not an array", R"({"os":"linux","rootfs":{"type":"layers","diff_ids":"x"}})", "diff_ids"},
        {"numeric os", R"({"os":123,"rootfs":{"type":"layers"}})", "invalid image config"},
        {"numeric User", R"({"config":{"User":1234},"rootfs":{"type":"layers"}})", "invalid image config"},
        {"numeric Env entry", R"({"config":{"Env":["A=1",7353]},"rootfs":{"type":"layers"}})", "invalid image config"},
        {"Volumes as an array", R"({"config":{"Volumes":["/a"]},"rootfs":{"type":"layers"}})", "Volumes"},
        {"history as a string", R"({"history":"should be an array","rootfs":{"type":"layers"}})", "history"},
        {"config not an object", R"({"config":"x","rootfs":{"type":"layers"}})", "config"},
    };
    for (const BadConfig& c : cases) {
        auto parsed = ImageConfig::parse(c.bytes);
        ASSERT_FALSE(parsed) << c.why;
        EXPECT_NE(parsed.error().message().find(c.message), std::string::npos)
            << c.why << ": " << parsed.error().message();
    }
}

TEST(RunConfigEnv, SetEnvReplacesInPlaceAndAppendsNew) {
    RunConfig run;
    run.env = {"A=1", "B=2"};
    run.set_env("A", "3");
    run.set_env("C", "4=5");
    EXPECT_EQ(run.env, (std::vector<std::string>{"A=3", "B=2", "C=4=5"}));
    EXPECT_EQ(run.env_value("C"), "4=5");
    EXPECT_EQ(run.env_value("D"), std::nullopt);
}

TEST(FormatRfc3339, FormatsUtcSeconds) {
    EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace kiln
