// The HTTP layer against a tiny server in this process: the hostile behaviours a real registry will not show.
#include "registry/http.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

using test::LocalHttpServer;
using test::LocalRequest;
using test::LocalResponse;

std::unique_ptr<LocalHttpServer> serve(test::LocalHandler handler) {
    auto server = LocalHttpServer::start(std::move(handler));
    EXPECT_TRUE(server) << server.error().message();
    return server ? std::move(*server) : nullptr;
}

TEST(HttpClientTest, CapturedBodyOverTheLimitIsRefused) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.body = std::string(5 << 20, 'x')}; });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.url = server->url("/big")}, 4 << 20);
    ASSERT_FALSE(response);
    EXPECT_NE(response.error().message().find("larger than the limit of 4194304 bytes"), std::string::npos)
        << response.error().message();
    EXPECT_FALSE(response.error().retryable());
}

TEST(HttpClientTest, BodyWithinTheLimitIsCaptured) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.body = "{\"ok\":true}"}; });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.url = server->url("/small")}, 1024);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "{\"ok\":true}");
}

TEST(HttpClientTest, ErrorBodyStaysOutOfTheSink) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.status = 404, .body = R"({"errors":[{"code":"BLOB_UNKNOWN"}]})"};
    });
    ASSERT_TRUE(server);
    HttpClient http;
    StringWriter sink;
    auto response = http.send({.url = server->url("/blob")}, sink);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 404);
    EXPECT_EQ(sink.bytes(), "");
    EXPECT_NE(response->body.find("BLOB_UNKNOWN"), std::string::npos);
}

TEST(HttpClientTest, HeadIgnoresTheLimitForABodyThatNeverComes) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.declared_length = 1 << 30}; });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.method = "HEAD", .url = server->url("/v2/a/blobs/x")}, 1024);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->headers.get("Content-Length"), "1073741824");
}

TEST(HttpClientTest, RedirectToAnotherHostDropsAuthorization) {
    auto storage = serve([](const LocalRequest&) { return LocalResponse{.body = "blob bytes"}; });
    ASSERT_TRUE(storage);
    std::string target = storage->url("/storage/blob");
    auto registry = serve([&](const LocalRequest&) {
        return LocalResponse{.status = 307, .headers = {{"Location", target}}};
    });
    ASSERT_TRUE(registry);
    HttpClient http;
    StringWriter sink;
    auto response =
        http.send({.url = registry->url("/v2/a/blobs/x"), .authorization = "Bearer secret", .redirects = Redirects::follow},
                  sink);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(sink.bytes(), "blob bytes");
    ASSERT_EQ(registry->requests().size(), 1u);
    EXPECT_EQ(registry->requests()[0].header("Authorization"), "Bearer secret");
    ASSERT_EQ(storage->requests().size(), 1u);
    EXPECT_FALSE(storage->requests()[0].header("Authorization"));
}

TEST(HttpClientTest, RedirectWithinTheSameOriginKeepsAuthorization) {
    std::unique_ptr<LocalHttpServer> server;
    server = serve([](const LocalRequest& request) {
        if (request.path() == "/first") return LocalResponse{.status = 302, .headers = {{"Location", "/second"}}};
        return LocalResponse{.body = "done"};
    });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch(
        {.url = server->url("/first"), .authorization = "Bearer secret", .redirects = Redirects::follow}, 1024);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->body, "done");
    ASSERT_EQ(server->requests().size(), 2u);
    EXPECT_EQ(server->requests()[1].header("Authorization"), "Bearer secret");
}

TEST(HttpClientTest, RedirectIsReportedWhenNotFollowed) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.status = 302, .headers = {{"Location", "/elsewhere"}}};
    });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.url = server->url("/x")}, 1024);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 302);
    EXPECT_EQ(server->requests().size(), 1u);
}

TEST(HttpClientTest, RedirectToAnotherSchemeIsRefused) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.status = 302, .headers = {{"Location", "file:///etc/passwd"}}};
    });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.url = server->url("/x"), .redirects = Redirects::follow}, 1024);
    ASSERT_FALSE(response);
    EXPECT_NE(response.error().message().find("only http and https"), std::string::npos) << response.error().message();
}

TEST(HttpClientTest, StalledServerIsAbandonedAsRetryable) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.body = "partial", .declared_length = 1000, .stall_after_body = std::chrono::seconds(30)};
    });
    ASSERT_TRUE(server);
    HttpClient http({.timeouts = {.stall = std::chrono::seconds(1)}});
    StringWriter sink;
    auto started = std::chrono::steady_clock::now();
    auto response = http.send({.url = server->url("/stall")}, sink);
    auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(response);
    EXPECT_TRUE(response.error().retryable()) << response.error().message();
    EXPECT_NE(response.error().message().find("moved in 1.0 s, below the minimum of"), std::string::npos)
        << response.error().message();
    // Abandoned after about the stall limit, not after curl's averaging window (several seconds more).
    EXPECT_LT(elapsed, std::chrono::milliseconds(3500));
}

TEST(HttpClientTest, ConnectionRefusedIsRetryable) {
    std::uint16_t port;
    {
        auto server = serve([](const LocalRequest&) { return LocalResponse{}; });
        ASSERT_TRUE(server);
        port = server->port();
    }
    HttpClient http;
    auto response = http.fetch({.url = "http://127.0.0.1:" + std::to_string(port) + "/"}, 1024);
    ASSERT_FALSE(response);
    EXPECT_TRUE(response.error().retryable()) << response.error().message();
}

TEST(HttpClientTest, UploadSendsBodyWithContentLength) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.status = 201}; });
    ASSERT_TRUE(server);
    HttpClient http;
    StringReader body("layer bytes");
    auto response = http.fetch({.method = "PUT", .url = server->url("/up"), .body = &body, .body_size = 11}, 1024);
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->status, 201);
    ASSERT_EQ(server->requests().size(), 1u);
    EXPECT_EQ(server->requests()[0].method, "PUT");
    EXPECT_EQ(server->requests()[0].body, "layer bytes");
    EXPECT_EQ(server->requests()[0].header("Content-Length"), "11");
}

TEST(HttpClientTest, ShortUploadSourceIsAnError) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.status = 201}; });
    ASSERT_TRUE(server);
    HttpClient http;
    StringReader body("short");
    auto response = http.fetch({.method = "PUT", .url = server->url("/up"), .body = &body, .body_size = 100}, 1024);
    ASSERT_FALSE(response);
    EXPECT_NE(response.error().message().find("ended after 5 of 100 bytes"), std::string::npos)
        << response.error().message();
}

TEST(HttpClientTest, HttpsToPlainHttpServerFails) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{}; });
    ASSERT_TRUE(server);
    HttpClient http;
    auto response = http.fetch({.url = "https://" + server->host_port() + "/v2/"}, 1024);
    ASSERT_FALSE(response);
    EXPECT_NE(response.error().message().find("TLS"), std::string::npos) << response.error().message();
}

TEST(UrlTest, AppendQueryHandlesExistingQuery) {
    EXPECT_EQ(append_query("http://r/v2/a/blobs/uploads/u", "digest", "sha256:ab").value(),
              "http://r/v2/a/blobs/uploads/u?digest=sha256%3aab");
    EXPECT_EQ(append_query("http://r/u?_state=xyz", "digest", "sha256:ab").value(),
              "http://r/u?_state=xyz&digest=sha256%3aab");
}

TEST(UrlTest, ResolveHandlesRelativeAndAbsoluteLocations) {
    EXPECT_EQ(resolve_url("http://r:5000/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u?s=1").value(),
              "http://r:5000/v2/a/blobs/uploads/u?s=1");
    EXPECT_EQ(resolve_url("http://r:5000/v2/", "https://storage.example/x").value(), "https://storage.example/x");
    EXPECT_FALSE(resolve_url("http://r/", "ftp://r/x"));
}

TEST(UrlTest, OriginIncludesDefaultPort) {
    EXPECT_EQ(url_origin("https://Reg.IO/v2/").value(), "https://reg.io:443");
    EXPECT_EQ(url_origin("http://127.0.0.1:5000/x").value(), "http://127.0.0.1:5000");
}

}  // namespace
}  // namespace kiln
