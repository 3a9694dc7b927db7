// Git contexts, fetched by the git command from repositories served on 127.0.0.1: by git daemon (git://) and by
// a local HTTP server (git's "dumb" HTTP protocol, with and without Basic credentials). Refs, tags, commits and
// subdirectories, Kaniko's --git options, and the contexts refused.

#include "builder/sources/context_source.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "common/base64.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/rootfs.hpp"
#include "tests/support/local_http_server.hpp"

namespace kiln {
namespace {

// A port nothing listens on right now.
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

class GitContextTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/usr/bin/git", X_OK) != 0) GTEST_SKIP() << "git is not installed (scripts/setup installs it)";
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-git-context-test-"));
        ASSERT_TRUE(make_directories(work()));
        // main: Dockerfile and sub/f "one" (tagged v1), then sub/f "two"; branch "other" has other.txt.
        std::string source = m_dir.path() + "/source";
        ASSERT_TRUE(make_directories(source + "/sub"));
        git({"init", "-q", "-b", "main", source});
        ASSERT_TRUE(write_file_atomic(source + "/Dockerfile", "FROM scratch\nCOPY . /\n"));
        ASSERT_TRUE(write_file_atomic(source + "/sub/f", "one\n"));
        ASSERT_EQ(::symlink("/etc", (source + "/escape").c_str()), 0);
        git({"-C", source, "add", "."});
        git({"-C", source, "commit", "-qm", "one"});
        git({"-C", source, "tag", "v1"});
        m_first_commit = std::string(trim(git({"-C", source, "rev-parse", "HEAD"})));
        ASSERT_TRUE(write_file_atomic(source + "/sub/f", "two\n"));
        git({"-C", source, "commit", "-qam", "two"});
        git({"-C", source, "checkout", "-q", "-b", "other"});
        ASSERT_TRUE(write_file_atomic(source + "/other.txt", "other\n"));
        git({"-C", source, "add", "other.txt"});
        git({"-C", source, "commit", "-qm", "other"});
        git({"-C", source, "checkout", "-q", "main"});
        m_served = m_dir.path() + "/served";
        ASSERT_TRUE(make_directories(m_served));
        git({"clone", "-q", "--bare", source, m_served + "/repo.git"});
        git({"-C", m_served + "/repo.git", "update-server-info"});
    }
    void TearDown() override {
        if (m_daemon_pid > 0) ::kill(m_daemon_pid, SIGTERM);
    }

    std::string git(std::vector<std::string> args) {
        args.insert(args.begin(), {"git", "-c", "user.email=test@kiln", "-c", "user.name=test"});
        auto run = run_process(args);
        EXPECT_TRUE(run && run->exit_code == 0) << join(args, " ") << ": " << (run ? run->stderr_bytes : run.error().message());
        return run ? run->stdout_bytes : "";
    }

    // Serves m_served with git daemon; returns "git://127.0.0.1:PORT".
    std::string start_daemon() {
        std::uint16_t port = free_port();
        std::string pid_file = m_dir.path() + "/daemon.pid";
        auto started = run_process({"git", "daemon", "--detach", "--pid-file=" + pid_file, "--listen=127.0.0.1",
                                    str_cat("--port=", port), "--export-all", "--reuseaddr", "--base-path=" + m_served,
                                    m_served});
        EXPECT_TRUE(started && started->exit_code == 0);
        for (int attempt = 0; attempt < 100 && m_daemon_pid <= 0; ++attempt) {
            std::uint64_t pid = 0;
            if (parse_uint64(std::string(trim(read_file(pid_file).value_or(""))), pid)) m_daemon_pid = pid_t(pid);
            else ::usleep(20000);
        }
        EXPECT_GT(m_daemon_pid, 0) << "git daemon did not start";
        ::usleep(200000);  // until it listens
        return str_cat("git://127.0.0.1:", port);
    }

    // Serves m_served's files over HTTP (git's dumb protocol), asking for `credentials` ("user:password") if set.
    std::unique_ptr<test::LocalHttpServer> start_http(const std::string& credentials = "") {
        std::string root = m_served;
        auto server = test::LocalHttpServer::start([root, credentials](const test::LocalRequest& request) {
            if (!credentials.empty()) {
                std::string expected = "Basic " + base64_encode(credentials);
                if (request.header("Authorization").value_or("") != expected)
                    return test::LocalResponse{.status = 401, .headers = {{"WWW-Authenticate", "Basic realm=\"git\""}}};
            }
            std::string path = test::percent_decode(request.path());
            if (escapes_root(clean_path(path))) return test::LocalResponse{.status = 404};
            auto bytes = read_file(root + "/" + clean_path(path));
            if (!bytes) return test::LocalResponse{.status = 404};
            return test::LocalResponse{.body = *bytes};
        });
        EXPECT_TRUE(server) << server.error().message();
        return server ? std::move(*server) : nullptr;
    }

    Result<PreparedContext> prepare(const std::string& context, GitOptions options = {},
                                    std::map<std::string, std::string, std::less<>> environment = {}) {
        environment.emplace("PATH", "/usr/bin:/bin");
        environment.emplace("HOME", m_dir.path());
        return prepare_context(ContextInputs{.context = context,
                                             .sub_path = "",
                                             .dockerfile = "Dockerfile",
                                             .work_dir = work() + str_cat("/", m_prepared++),
                                             .stdin_fd = -1,
                                             .git = options,
                                             .environment = environment});
    }
    std::string work() const { return m_dir.path() + "/work"; }

    TempDir m_dir;
    std::string m_served;
    std::string m_first_commit;
    pid_t m_daemon_pid = -1;
    int m_prepared = 0;
};

TEST_F(GitContextTest, ABranchATagACommitAndASubdirectoryOverGitDaemon) {
    std::string base = start_daemon() + "/repo.git";
    auto main_sub = prepare(base + "#main:sub");
    ASSERT_TRUE(main_sub) << main_sub.error().message();
    EXPECT_EQ(read_file(main_sub->directory + "/f").value_or(""), "two\n");
    auto tagged = prepare(base + "#v1:sub");
    ASSERT_TRUE(tagged) << tagged.error().message();
    EXPECT_EQ(read_file(tagged->directory + "/f").value_or(""), "one\n");
    auto commit = prepare(base + "#" + m_first_commit + ":sub");
    ASSERT_TRUE(commit) << commit.error().message();
    EXPECT_EQ(read_file(commit->directory + "/f").value_or(""), "one\n");
    auto head = prepare(base);
    ASSERT_TRUE(head) << head.error().message();
    EXPECT_EQ(head->dockerfile, head->directory + "/Dockerfile");
    EXPECT_TRUE(path_exists(head->dockerfile));
    EXPECT_FALSE(path_exists(head->directory + "/other.txt"));
}

TEST_F(GitContextTest, TheGitBranchOptionPicksTheRefWhenTheUrlNamesNone) {
    std::string base = start_daemon() + "/repo.git";
    GitOptions options;
    ASSERT_TRUE(apply_git_option(options, "branch=other,single-branch=true"));
    auto other = prepare(base, options);
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_EQ(read_file(other->directory + "/other.txt").value_or(""), "other\n");
}

TEST_F(GitContextTest, AnHttpRepositoryWithCredentialsFromTheEnvironment) {
    auto open = start_http();
    ASSERT_TRUE(open);
    auto fetched = prepare(open->url("/repo.git") + "#" + m_first_commit);
    ASSERT_TRUE(fetched) << fetched.error().message();
    EXPECT_EQ(read_file(fetched->directory + "/sub/f").value_or(""), "one\n");

    auto guarded = start_http("builder:s3cret");
    ASSERT_TRUE(guarded);
    auto refused = prepare(guarded->url("/repo.git") + "#main");
    ASSERT_FALSE(refused);  // and git never waited for a terminal
    EXPECT_NE(refused.error().message().find(guarded->url("/repo.git")), std::string::npos) << refused.error().message();
    auto allowed = prepare(guarded->url("/repo.git") + "#main", {}, {{"GIT_USERNAME", "builder"}, {"GIT_PASSWORD", "s3cret"}});
    ASSERT_TRUE(allowed) << allowed.error().message();
    EXPECT_EQ(read_file(allowed->directory + "/sub/f").value_or(""), "two\n");
}

TEST_F(GitContextTest, MissingRefsAndSubdirectoriesOutsideTheCheckoutAreRefused) {
    std::string base = start_daemon() + "/repo.git";
    auto missing = prepare(base + "#no-such-branch");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("no-such-branch"), std::string::npos) << missing.error().message();
    for (const char* subdir : {":../outside", ":/etc"}) {
        auto refused = prepare(base + "#main" + subdir);
        ASSERT_FALSE(refused) << subdir;
        EXPECT_NE(refused.error().message().find("inside"), std::string::npos) << refused.error().message();
    }
    auto escape = prepare(base + "#main:escape");
    ASSERT_FALSE(escape);
    EXPECT_NE(escape.error().message().find("leads outside"), std::string::npos) << escape.error().message();
}

// A hostile repository's submodule that points at a path on kiln's own disk is not fetched: only network
// transports are allowed.
TEST_F(GitContextTest, SubmodulesFromTheLocalDiskAreRefused) {
    std::string secret = m_dir.path() + "/secret";
    git({"init", "-q", "-b", "main", secret});
    ASSERT_TRUE(write_file_atomic(secret + "/key", "private\n"));
    git({"-C", secret, "add", "key"});
    git({"-C", secret, "commit", "-qm", "secret"});
    std::string source = m_dir.path() + "/source";
    git({"-C", source, "-c", "protocol.file.allow=always", "submodule", "add", "-q", secret, "vendored"});
    git({"-C", source, "commit", "-qm", "submodule"});
    git({"-C", m_served + "/repo.git", "fetch", "-q", source, "main:main"});
    git({"-C", m_served + "/repo.git", "update-server-info"});
    std::string base = start_daemon() + "/repo.git";
    GitOptions options;
    options.recurse_submodules = true;
    auto refused = prepare(base + "#main", options);
    ASSERT_FALSE(refused) << "the local submodule was fetched";
    EXPECT_NE(refused.error().message().find("not allowed"), std::string::npos) << refused.error().message();
}

TEST_F(GitContextTest, WithoutTheGitCommandAGitContextIsRefusedSayingSo) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", m_dir.path().c_str(), 1);  // where kiln looks for git: no git there
    auto refused = prepare("git://127.0.0.1:9/repo.git");
    ::setenv("PATH", path.c_str(), 1);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("git contexts need the git command"), std::string::npos)
        << refused.error().message();
}

TEST(GitContextSpelling, UrlsRefsAndOptions) {
    EXPECT_TRUE(is_git_context("git://host/repo"));
    EXPECT_TRUE(is_git_context("https://host/repo.git#main:dir"));
    EXPECT_TRUE(is_git_context("git@host:org/repo.git"));
    EXPECT_FALSE(is_git_context("https://host/context.tar.gz"));
    auto url = parse_git_context("https://host/repo.git#refs/heads/main:app/web");
    ASSERT_TRUE(url) << url.error().message();
    EXPECT_EQ(url->repository, "https://host/repo.git");
    EXPECT_EQ(url->ref, "refs/heads/main");
    EXPECT_EQ(url->subdir, "app/web");
    EXPECT_FALSE(parse_git_context("git://host/repo#--upload-pack=evil"));
    GitOptions options;
    EXPECT_TRUE(apply_git_option(options, "recurse-submodules=true,insecure-skip-tls=false"));
    EXPECT_TRUE(options.recurse_submodules);
    EXPECT_FALSE(apply_git_option(options, "depth=1"));
    EXPECT_FALSE(apply_git_option(options, "single-branch=yes"));
}

}  // namespace
}  // namespace kiln
