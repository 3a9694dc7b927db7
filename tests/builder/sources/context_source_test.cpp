// --context in Kaniko's spellings and --dockerfile -: directories, tar archives from a file, stdin or a local
// HTTP server (real tars, gzip-compressed too), and the contexts refused with what works instead. Git contexts:
// git_source_test.cpp.

#include "builder/sources/context_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "layers/compression.hpp"
#include "tests/support/local_http_server.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

class ContextSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-context-source-test-"));
        ASSERT_TRUE(make_directories(work()));
    }
    std::string work() const { return m_dir.path() + "/work"; }
    std::string context_tar() const {
        return test::TestTar().file("Dockerfile", "FROM scratch\nCOPY app.txt /\n").file("app.txt", "app\n").bytes();
    }
    std::string put(const std::string& name, const std::string& bytes) {
        std::string path = m_dir.path() + "/" + name;
        EXPECT_TRUE(write_file_atomic(path, bytes));
        return path;
    }
    // A pipe whose read end holds `bytes` (written by a thread), as stdin would.
    UniqueFd stdin_with(const std::string& bytes) {
        auto pipe = make_pipe();
        EXPECT_TRUE(pipe);
        m_writer = std::thread([bytes, fd = std::move(pipe->second)]() mutable {
            size_t done = 0;
            while (done < bytes.size()) {
                ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
                if (n <= 0) break;
                done += static_cast<size_t>(n);
            }
        });
        return std::move(pipe->first);
    }
    void TearDown() override {
        if (m_writer.joinable()) m_writer.join();
    }
    Result<PreparedContext> prepare(const std::string& context, const std::string& dockerfile = "Dockerfile",
                                    int stdin_fd = -1, const std::string& sub_path = "") {
        return prepare_context(ContextInputs{
            .context = context, .sub_path = sub_path, .dockerfile = dockerfile, .work_dir = work(), .stdin_fd = stdin_fd});
    }

    TempDir m_dir;
    std::thread m_writer;
};

TEST_F(ContextSourceTest, ADirectoryIsUsedWhereItIsWithOrWithoutDirScheme) {
    std::string dir = m_dir.path() + "/ctx";
    ASSERT_TRUE(make_directories(dir));
    auto plain = prepare(dir);
    ASSERT_TRUE(plain) << plain.error().message();
    EXPECT_EQ(plain->directory, dir);
    EXPECT_EQ(plain->dockerfile, dir + "/Dockerfile");
    auto prefixed = prepare("dir://" + dir);
    ASSERT_TRUE(prefixed);
    EXPECT_EQ(prefixed->directory, dir);
}

TEST_F(ContextSourceTest, ATarFileIsUnpackedAndItsDockerfileUsed) {
    StringWriter gzipped;
    auto compressor = make_compressor(gzipped, CompressionOptions{.compression = Compression::gzip});
    ASSERT_TRUE(compressor && (*compressor)->write(context_tar()) && (*compressor)->finish());
    for (const auto& [name, bytes] : {std::pair{std::string("ctx.tar"), context_tar()},
                                      std::pair{std::string("ctx.tar.gz"), gzipped.bytes()}}) {
        std::string path = put(name, bytes);
        if (path_exists(work() + "/context")) {
            ASSERT_TRUE(remove_tree(work() + "/context"));
        }
        auto prepared = prepare("tar://" + path);
        ASSERT_TRUE(prepared) << name << ": " << prepared.error().message();
        EXPECT_EQ(read_file(prepared->directory + "/app.txt").value_or(""), "app\n") << name;
        EXPECT_EQ(prepared->dockerfile, prepared->directory + "/Dockerfile") << name;
    }
}

TEST_F(ContextSourceTest, ATarOnStdinIsUnpacked) {
    UniqueFd in = stdin_with(context_tar());
    auto prepared = prepare("tar://stdin", "Dockerfile", in.get());
    ASSERT_TRUE(prepared) << prepared.error().message();
    EXPECT_EQ(read_file(prepared->directory + "/app.txt").value_or(""), "app\n");
}

TEST_F(ContextSourceTest, ADockerfileOnStdinIsRead) {
    std::string dir = m_dir.path() + "/ctx";
    ASSERT_TRUE(make_directories(dir));
    UniqueFd in = stdin_with("FROM scratch\n");
    auto prepared = prepare(dir, "-", in.get());
    ASSERT_TRUE(prepared) << prepared.error().message();
    EXPECT_EQ(read_file(prepared->dockerfile).value_or(""), "FROM scratch\n");
    auto both = prepare("tar://stdin", "-", in.get());
    ASSERT_FALSE(both);
    EXPECT_NE(both.error().message().find("cannot both read stdin"), std::string::npos);
}

TEST_F(ContextSourceTest, ATarFromAnHttpServerIsDownloadedAndUnpacked) {
    std::string tar = context_tar();
    auto server = test::LocalHttpServer::start([tar](const test::LocalRequest&) { return test::LocalResponse{.body = tar}; });
    ASSERT_TRUE(server) << server.error().message();
    auto prepared = prepare((*server)->url("/context.tar"));
    ASSERT_TRUE(prepared) << prepared.error().message();
    EXPECT_EQ(read_file(prepared->directory + "/app.txt").value_or(""), "app\n");
}

TEST_F(ContextSourceTest, HostileOrWrongArchivesAreRefusedNamingTheContext) {
    std::string escaping = put("escape.tar", test::TestTar().file("../outside.txt", "x").bytes());
    auto hostile = prepare("tar://" + escaping);
    ASSERT_FALSE(hostile);
    EXPECT_NE(hostile.error().message().find("tar://" + escaping), std::string::npos) << hostile.error().message();
    EXPECT_FALSE(path_exists(work() + "/outside.txt"));
    EXPECT_FALSE(path_exists(m_dir.path() + "/outside.txt"));
    std::string text = put("notes.txt", "not an archive\n");
    auto wrong = prepare("tar://" + text);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("not a tar archive"), std::string::npos) << wrong.error().message();
    auto missing = prepare("tar://" + m_dir.path() + "/none.tar");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("does not exist"), std::string::npos);
}

TEST_F(ContextSourceTest, ASubPathNamesADirectoryInsideTheContextAndNeverOutside) {
    std::string archive = put("mono.tar", test::TestTar()
                                              .file("services/api/Dockerfile", "FROM scratch\n")
                                              .file("services/api/main.go", "package main\n")
                                              .bytes());
    auto prepared = prepare("tar://" + archive, "Dockerfile", -1, "services/api");
    ASSERT_TRUE(prepared) << prepared.error().message();
    EXPECT_EQ(prepared->directory, work() + "/context/services/api");
    EXPECT_EQ(prepared->dockerfile, work() + "/context/services/api/Dockerfile");
    ASSERT_EQ(::symlink(m_dir.path().c_str(), (work() + "/context/services/out").c_str()), 0);
    for (const char* outside : {"..", "../work", "/etc", "services/../../x", "services/out"}) {
        auto refused = prepare("tar://" + archive, "Dockerfile", -1, outside);
        ASSERT_FALSE(refused) << outside;
        EXPECT_NE(refused.error().message().find("--context-sub-path"), std::string::npos) << outside;
    }
    auto missing = prepare("tar://" + archive, "Dockerfile", -1, "services/web");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("no such directory"), std::string::npos);
}

TEST_F(ContextSourceTest, BucketsAndUnknownSchemesAreRefusedSayingWhatWorks) {
    for (const char* context : {"s3://bucket/ctx.tar.gz", "gs://bucket/ctx.tar.gz", "ftp://example.com/ctx.tar"}) {
        auto refused = prepare(context);
        ASSERT_FALSE(refused) << context;
        EXPECT_NE(refused.error().message().find(context), std::string::npos) << refused.error().message();
        EXPECT_NE(refused.error().message().find("--context"), std::string::npos) << refused.error().message();
    }
}

}  // namespace
}  // namespace kiln
