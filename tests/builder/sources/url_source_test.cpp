// ADD's URL sources: how they are told apart, named and dated, and downloads from a local server that
// answers, fails, lies about its length or stalls.

#include "builder/sources/url_source.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

using test::LocalHttpServer;
using test::LocalRequest;
using test::LocalResponse;

TEST(UrlSourceTest, SourcesAreLocalHttpOrGitAsBuildKitTellsThem) {
    EXPECT_EQ(classify_add_source("https://example.com/app.tar.gz"), AddSourceKind::http);
    EXPECT_EQ(classify_add_source("http://127.0.0.1:8080/file?x=1"), AddSourceKind::http);
    EXPECT_EQ(classify_add_source("https://github.com/moby/buildkit.git#v0.12"), AddSourceKind::git);
    EXPECT_EQ(classify_add_source("git@github.com:moby/buildkit.git"), AddSourceKind::git);
    EXPECT_EQ(classify_add_source("git://example.com/repo"), AddSourceKind::git);
    EXPECT_EQ(classify_add_source("app/http:/not-a-url"), AddSourceKind::local);
    EXPECT_EQ(classify_add_source("*.txt"), AddSourceKind::local);
}

TEST(UrlSourceTest, FileNameIsTheLastDecodedPathSegment) {
    EXPECT_EQ(url_file_name("https://example.com/dl/tool-1.2.tar.gz?token=abc#frag"), "tool-1.2.tar.gz");
    EXPECT_EQ(url_file_name("https://example.com/a%20b.txt"), "a b.txt");
    EXPECT_EQ(url_file_name("https://example.com/dir/"), "dir");
    EXPECT_EQ(url_file_name("https://example.com"), "__unnamed__");
    EXPECT_EQ(url_file_name("https://example.com/"), "__unnamed__");
    EXPECT_EQ(url_file_name("https://example.com/%2e%2e"), "__unnamed__");
    EXPECT_EQ(url_file_name("https://example.com/x%2Fy"), "y");  // a decoded '/' still separates
}

TEST(UrlSourceTest, HttpDatesOfAllThreeFormsParse) {
    EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
    EXPECT_FALSE(parse_http_date("yesterday"));
    EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"));
    EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
}

TEST(UrlSourceTest, ChecksumMustBeASha256Digest) {
    EXPECT_TRUE(validate_checksum("sha256:" + std::string(64, 'a')));
    EXPECT_FALSE(validate_checksum("sha256:" + std::string(64, 'A')));
    EXPECT_FALSE(validate_checksum("sha256:abc"));
    EXPECT_FALSE(validate_checksum(std::string(64, 'a')));
    auto other = validate_checksum("sha512:" + std::string(128, 'a'));
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message().find("only sha256"), std::string::npos) << other.error().message();
}

constexpr std::uint64_t k_limit = 16ull << 30;

class DownloadTest : public ::testing::Test {
protected:
    void SetUp() override { m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-download-")); }
    std::unique_ptr<LocalHttpServer> serve(test::LocalHandler handler) {
        auto server = LocalHttpServer::start(std::move(handler));
        EXPECT_TRUE(server) << server.error().message();
        return server ? std::move(*server) : nullptr;
    }
    std::string file() const { return m_dir.path() + "/download"; }
    TempDir m_dir;
};

TEST_F(DownloadTest, BodyIsStoredHashedAndDatedFromLastModified) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.headers = {{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}},
                             .body = "payload\n"};
    });
    HttpClient client;
    auto download = download_url(client, server->url("/files/payload.txt"), file(), k_limit);
    ASSERT_TRUE(download) << download.error().message();
    EXPECT_EQ(*read_file(file()), "payload\n");
    EXPECT_EQ(download->digest, "sha256:" + sha256_hex("payload\n"));
    EXPECT_EQ(download->size, 8u);
    EXPECT_EQ(download->last_modified, 784111777);
}

TEST_F(DownloadTest, RedirectsAreFollowed) {
    auto server = serve([](const LocalRequest& request) {
        if (request.path() == "/old") return LocalResponse{.status = 302, .headers = {{"Location", "/new"}}};
        return LocalResponse{.body = "moved"};
    });
    HttpClient client;
    auto download = download_url(client, server->url("/old"), file(), k_limit);
    ASSERT_TRUE(download) << download.error().message();
    EXPECT_EQ(*read_file(file()), "moved");
    EXPECT_FALSE(download->last_modified);
}

TEST_F(DownloadTest, NotFoundNamesTheUrlAndTheStatus) {
    auto server =
        serve([](const LocalRequest&) { return LocalResponse{.status = 404, .body = "no such file"}; });
    HttpClient client;
    std::string url = server->url("/missing.tar.gz");
    auto download = download_url(client, url, file(), k_limit);
    ASSERT_FALSE(download);
    EXPECT_NE(download.error().message().find(url), std::string::npos) << download.error().message();
    EXPECT_NE(download.error().message().find("404"), std::string::npos) << download.error().message();
}

TEST_F(DownloadTest, BodyShorterThanItsContentLengthFails) {
    auto server =
        serve([](const LocalRequest&) { return LocalResponse{.body = "short", .declared_length = 1000}; });
    HttpClient client;
    auto download = download_url(client, server->url("/cut"), file(), k_limit);
    ASSERT_FALSE(download);
    EXPECT_NE(download.error().message().find("/cut"), std::string::npos) << download.error().message();
}

TEST_F(DownloadTest, StalledServerTimesOutInsteadOfHanging) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{
            .body = "", .declared_length = 1 << 20, .stall_after_body = std::chrono::milliseconds(20000)};
    });
    HttpClient client(HttpClientOptions{.timeouts = {.stall = std::chrono::milliseconds(1000)}});
    auto start = std::chrono::steady_clock::now();
    auto download = download_url(client, server->url("/stall"), file(), k_limit);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(download);
    EXPECT_LT(elapsed, std::chrono::seconds(10));
    EXPECT_NE(download.error().message().find("/stall"), std::string::npos) << download.error().message();
}

TEST_F(DownloadTest, UnreachableServerFailsNamingTheUrl) {
    std::string url;
    {
        auto server = serve([](const LocalRequest&) { return LocalResponse{}; });
        url = server->url("/gone");
    }  // the port is closed now
    HttpClient client;
    auto download = download_url(client, url, file(), k_limit);
    ASSERT_FALSE(download);
    EXPECT_NE(download.error().message().find(url), std::string::npos) << download.error().message();
}

// An endless body (7.3 GB in 20 s before this limit) stops at --max-download-size, with or without chunking,
// and the error says so.
TEST_F(DownloadTest, AnEndlessBodyStopsAtTheSizeLimit) {
    for (auto endless : {LocalResponse::Endless::close_delimited, LocalResponse::Endless::chunked}) {
        auto server = serve([endless](const LocalRequest&) { return LocalResponse{.body = "start", .endless = endless}; });
        HttpClient client;
        std::remove(file().c_str());
        auto download = download_url(client, server->url("/endless"), file(), 8 << 20);
        ASSERT_FALSE(download);
        EXPECT_NE(download.error().message().find("--max-download-size"), std::string::npos)
            << download.error().message();
        EXPECT_NE(download.error().message().find("/endless"), std::string::npos) << download.error().message();
        EXPECT_LE(std::filesystem::file_size(file()), 8u << 20);
    }
}

// A byte every 500 ms is never silent for the stall window, yet far below the minimum rate: it is abandoned
// after about the window (a byte every 5 s held a build until it was killed from outside).
TEST_F(DownloadTest, AServerThatTricklesIsAbandonedAfterTheStallWindow) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.body = std::string(100, 't'), .trickle = std::chrono::milliseconds(500)};
    });
    HttpClient client(HttpClientOptions{.timeouts = {.stall = std::chrono::seconds(2), .min_rate = 1024}});
    auto start = std::chrono::steady_clock::now();
    auto download = download_url(client, server->url("/trickle"), file(), k_limit);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(download);
    EXPECT_TRUE(download.error().retryable()) << download.error().message();
    EXPECT_NE(download.error().message().find("below the minimum of"), std::string::npos)
        << download.error().message();
    EXPECT_LT(elapsed, std::chrono::seconds(6));
}

// A transfer that keeps above the minimum rate still ends at the deadline, for good.
TEST_F(DownloadTest, ALiveTransferEndsAtTheDeadlineWithoutRetry) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.body = std::string(1000, 'd'), .trickle = std::chrono::milliseconds(20)};
    });
    HttpClient client(HttpClientOptions{
        .timeouts = {.stall = std::chrono::seconds(1), .min_rate = 10, .deadline = std::chrono::seconds(2)}});
    auto start = std::chrono::steady_clock::now();
    auto download = download_url(client, server->url("/long"), file(), 1ull << 40);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(download);
    EXPECT_FALSE(download.error().retryable()) << download.error().message();
    EXPECT_NE(download.error().message().find("deadline of 2.0 s"), std::string::npos) << download.error().message();
    EXPECT_LT(elapsed, std::chrono::seconds(6));
}

}  // namespace
}  // namespace kiln
