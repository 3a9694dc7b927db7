// ADD end to end with the kiln binary: local archives of every compression unpacked (hostile ones refused),
// other files copied as they are, and URLs downloaded from a server on 127.0.0.1 with BuildKit's metadata,
// --checksum verified, and failures that name the URL and the HTTP status.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "tests/integration/local_build_fixture.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln::test {
namespace {

constexpr const char* k_last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr std::int64_t k_last_modified_seconds = 784111777;

// A one-file ustar archive under any name, "../" included: GNU tar will not write such names.
std::string hostile_tar(const std::string& name, const std::string& content) {
    std::string header(512, '\0');
    auto field = [&header](size_t offset, size_t width, const std::string& value) {
        header.replace(offset, std::min(value.size(), width), value.substr(0, width));
    };
    auto octal = [&field](size_t offset, size_t width, std::uint64_t value) {
        char text[32];
        std::snprintf(text, sizeof text, "%0*llo", static_cast<int>(width - 1),
                      static_cast<unsigned long long>(value));
        field(offset, width, text);
    };
    field(0, 100, name);
    octal(100, 8, 0644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, content.size());
    octal(136, 12, 1600000000);
    header[156] = '0';
    field(257, 6, std::string("ustar\0", 6));
    field(263, 2, "00");
    field(148, 8, "        ");
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    octal(148, 7, sum);
    std::string padded = content + std::string((512 - content.size() % 512) % 512, '\0');
    return header + padded + std::string(1024, '\0');
}

class AddTest : public LocalBuildTest {
protected:
    void SetUp() override {
        LocalBuildTest::SetUp();
        if (IsSkipped()) return;
        put("tree/hello.txt", "hello from the archive\n", 0640);
        put("tree/bin/run", "#!/bin/sh\n", 0755);
    }

    // Runs a tool of the host (tar, gzip, …), skipping the test when it is missing.
    Result<std::string> tool(const std::vector<std::string>& argv, const std::string& input = "") {
        ProcessOptions options;
        options.stdin_bytes = input;
        KILN_ASSIGN(ProcessResult result, run_process(argv, options));
        if (result.exit_code != 0) return fail(str_cat(argv[0], " failed: ", result.stderr_bytes));
        return result.stdout_bytes;
    }

    // The context's tree/ as a tar made by GNU tar, compressed by `compressor` unless it is empty.
    std::optional<std::string> archive_of_tree(const std::string& compressor) {
        auto tar = tool({"tar", "--owner=1234", "--group=2345", "-C", context_path("tree"), "-cf", "-", "."});
        if (!tar) return std::nullopt;
        if (compressor.empty()) return *tar;
        auto compressed = tool({compressor, "-c"}, *tar);
        return compressed ? std::optional(*compressed) : std::nullopt;
    }

    std::unique_ptr<LocalHttpServer> serve(LocalHandler handler) {
        auto server = LocalHttpServer::start(std::move(handler));
        EXPECT_TRUE(server) << server.error().message();
        return server ? std::move(*server) : nullptr;
    }
};

TEST_F(AddTest, LocalArchivesOfEveryCompressionAreUnpacked) {
    std::string dockerfile = "FROM scratch\n";
    std::vector<std::string> unpacked;
    for (std::string compressor : {"", "gzip", "bzip2", "xz", "zstd"}) {
        auto archive = archive_of_tree(compressor);
        if (!archive) {
            GTEST_SKIP() << (compressor.empty() ? "tar" : compressor)
                         << " is not installed (Debian: bzip2, xz-utils, zstd)";
        }
        std::string name = compressor.empty() ? "plain" : compressor;
        put(name + ".data", *archive);  // recognised by content, not by name
        dockerfile += str_cat("ADD ", name, ".data /", name, "\n");
        unpacked.push_back(name);
    }
    build_ok(dockerfile);
    for (const std::string& name : unpacked) {
        SCOPED_TRACE(name);
        EXPECT_EQ(content_of(name + "/hello.txt"), "hello from the archive\n");
        auto hello = stat_of(name + "/hello.txt");
        ASSERT_TRUE(hello);
        EXPECT_EQ(hello->st_mode & 07777, 0640u);  // the archive's mode and owner
        EXPECT_EQ(hello->st_uid, 1234u);
        EXPECT_EQ(hello->st_gid, 2345u);
        EXPECT_EQ(stat_of(name + "/bin/run")->st_mode & 07777, 0755u);
    }
    EXPECT_EQ(layer_count(), unpacked.size());  // one layer per ADD
}

TEST_F(AddTest, ChownAppliesToUnpackedFilesAndExistingDirectoriesAreLeftAlone) {
    auto archive = archive_of_tree("gzip");
    ASSERT_TRUE(archive);
    put("app.tgz", *archive);
    put("marker", "m\n");
    build_ok(
        "FROM scratch\n"
        "COPY --chmod=0700 marker /srv/marker\n"
        "ADD --chown=42:43 app.tgz /srv/\n");
    for (const char* path : {"srv/hello.txt", "srv/bin", "srv/bin/run"}) {
        auto st = stat_of(path);
        ASSERT_TRUE(st) << path;
        EXPECT_EQ(st->st_uid, 42u) << path;
        EXPECT_EQ(st->st_gid, 43u) << path;
    }
    auto srv = stat_of("srv");  // it existed: the archive's "./" entry does not take it over
    ASSERT_TRUE(srv);
    EXPECT_EQ(srv->st_uid, 0u);
    EXPECT_EQ(srv->st_mode & 07777, 0755u);
}

TEST_F(AddTest, NonArchivesAndDirectoriesAreCopiedAsTheyAre) {
    auto text_gz = tool({"gzip", "-c"}, "plain text, not a tar\n");
    ASSERT_TRUE(text_gz);
    put("notes.gz", *text_gz);
    put("readme.txt", "read me\n");
    auto archive = archive_of_tree("gzip");
    ASSERT_TRUE(archive);
    put("bundle/inner.tar.gz", *archive);
    build_ok(
        "FROM scratch\n"
        "ADD notes.gz readme.txt /copied/\n"
        "ADD bundle /bundle/\n");
    auto notes = read_file(rootfs("copied/notes.gz"));
    ASSERT_TRUE(notes);
    EXPECT_EQ(*notes, *text_gz);
    EXPECT_EQ(content_of("copied/readme.txt"), "read me\n");
    auto inner = stat_of("bundle/inner.tar.gz");  // archives inside a directory stay archives
    ASSERT_TRUE(inner);
    EXPECT_TRUE(S_ISREG(inner->st_mode));
    EXPECT_FALSE(stat_of("bundle/hello.txt"));
}

TEST_F(AddTest, HostileArchiveIsRefusedNamingTheArchiveAndTheEntry) {
    put("evil.tar", hostile_tar("../../escaped.txt", "escaped\n"));
    KilnRun run = build("FROM scratch\nADD evil.tar /x/\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2: ADD evil.tar /x/")) << run.output;
    EXPECT_TRUE(contains(run.output, "evil.tar")) << run.output;
    EXPECT_TRUE(contains(run.output, "../../escaped.txt")) << run.output;
}

TEST_F(AddTest, UrlIsDownloadedWithBuildKitsNameModeMtimeAndOwner) {
    auto archive = archive_of_tree("gzip");
    ASSERT_TRUE(archive);
    std::string tarball = *archive;
    auto server = serve([tarball](const LocalRequest& request) {
        if (request.path() == "/files/tool.sh")
            return LocalResponse{.headers = {{"Last-Modified", k_last_modified}},
                                 .body = "#!/bin/sh\necho tool\n"};
        if (request.path() == "/files/app.tar.gz") return LocalResponse{.body = tarball};
        return LocalResponse{.status = 404};
    });
    std::string tool_url = server->url("/files/tool.sh?version=1");
    build_ok(
        str_cat("FROM scratch\n"
                "ADD ",
                tool_url,
                " /downloads/\n"
                "ADD --chmod=755 --chown=7:8 ",
                tool_url,
                " /usr/local/bin/tool\n"
                "ADD ",
                server->url("/files/app.tar.gz"), " /archives/\n"));
    EXPECT_EQ(content_of("downloads/tool.sh"), "#!/bin/sh\necho tool\n");
    auto downloaded = stat_of("downloads/tool.sh");
    ASSERT_TRUE(downloaded);
    EXPECT_EQ(downloaded->st_mode & 07777, 0600u);
    EXPECT_EQ(downloaded->st_uid, 0u);
    EXPECT_EQ(downloaded->st_mtim.tv_sec, k_last_modified_seconds);
    auto renamed = stat_of("usr/local/bin/tool");
    ASSERT_TRUE(renamed);
    EXPECT_EQ(renamed->st_mode & 07777, 0755u);
    EXPECT_EQ(renamed->st_uid, 7u);
    EXPECT_EQ(renamed->st_gid, 8u);
    auto tarball_file = stat_of("archives/app.tar.gz");  // a download is never unpacked
    ASSERT_TRUE(tarball_file);
    EXPECT_TRUE(S_ISREG(tarball_file->st_mode));
    EXPECT_FALSE(stat_of("archives/hello.txt"));
}

TEST_F(AddTest, ChecksumIsVerifiedForDownloads) {
    const std::string body = "checked content\n";
    auto server = serve([body](const LocalRequest&) { return LocalResponse{.body = body}; });
    std::string url = server->url("/checked.txt");
    std::string good = "sha256:" + sha256_hex(body);
    build_ok(str_cat("FROM scratch\nADD --checksum=", good, " ", url, " /checked.txt\n"));
    EXPECT_EQ(content_of("checked.txt"), body);

    std::string wrong = "sha256:" + sha256_hex("something else");
    KilnRun run = build(str_cat("FROM scratch\nADD --checksum=", wrong, " ", url, " /checked.txt\n"));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
    EXPECT_TRUE(contains(run.output, wrong)) << run.output;
    EXPECT_TRUE(contains(run.output, good)) << run.output;
}

TEST_F(AddTest, ChecksumOfALocalSourceIsRefusedAsInBuildKit) {
    put("local.txt", "x");
    KilnRun run =
        build(str_cat("FROM scratch\nADD --checksum=sha256:", std::string(64, 'a'), " local.txt /l\n"));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "--checksum requires an http(s) source")) << run.output;
}

TEST_F(AddTest, FailedDownloadNamesTheUrlAndTheStatus) {
    auto server = serve([](const LocalRequest&) { return LocalResponse{.status = 404, .body = "not here"}; });
    std::string url = server->url("/missing.tar.gz");
    KilnRun run = build(str_cat("FROM scratch\nADD ", url, " /m/\n"));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
    EXPECT_TRUE(contains(run.output, url)) << run.output;
    EXPECT_TRUE(contains(run.output, "404")) << run.output;
}

// An endless answer (7.3 GB in 20 s before the limit) stops at --max-download-size; the build fails naming
// the Dockerfile line, the URL and the flag, and what was downloaded is gone with the work directory.
TEST_F(AddTest, AnEndlessDownloadStopsAtTheSizeLimit) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.body = "start", .endless = LocalResponse::Endless::chunked};
    });
    std::string url = server->url("/endless.bin");
    KilnRun run = build(str_cat("FROM scratch\nADD ", url, " /m/\n"), {"--max-download-size=4Mi"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
    EXPECT_TRUE(contains(run.output, url)) << run.output;
    EXPECT_TRUE(contains(run.output, "--max-download-size")) << run.output;
}

// A server that sends a byte every 500 ms is never silent, yet the download is abandoned once the stall window
// shows less than the minimum rate, and the build fails within seconds instead of hanging.
TEST_F(AddTest, ADownloadThatTricklesIsAbandoned) {
    auto server = serve([](const LocalRequest&) {
        return LocalResponse{.body = std::string(1000, 't'), .trickle = std::chrono::milliseconds(500)};
    });
    std::string url = server->url("/trickle.bin");
    auto start = std::chrono::steady_clock::now();
    KilnRun run = build(str_cat("FROM scratch\nADD ", url, " /m/\n"), {"--registry-stall-timeout=2"});
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "below the minimum of 1.0 kB/s")) << run.output;
    EXPECT_TRUE(contains(run.output, url)) << run.output;
    EXPECT_LT(elapsed, std::chrono::seconds(30));
}

TEST_F(AddTest, GitSourcesAreRefusedClearly) {
    KilnRun run = build("FROM scratch\nADD https://github.com/moby/buildkit.git#v0.12.0 /src\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "git repository is not supported")) << run.output;
}

}  // namespace
}  // namespace kiln::test
