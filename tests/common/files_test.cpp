#include "common/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "common/temp_dir.hpp"

namespace kiln {
namespace {

std::string run_listing(const std::string& dir) {
    std::string names;
    DIR* handle = ::opendir(dir.c_str());
    while (dirent* entry = ::readdir(handle)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names += name + " ";
    }
    ::closedir(handle);
    return names;
}

class FilesTest : public ::testing::Test {
protected:
    void SetUp() override { m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-files-test-")); }
    TempDir m_dir;
};

TEST_F(FilesTest, AtomicFileIsInvisibleUntilCommitted) {
    std::string target = m_dir.path() + "/out.txt";
    auto file = AtomicFile::create(target, 0600);
    ASSERT_TRUE(file) << file.error().message();
    ASSERT_TRUE(file->writer().write("hello"));
    EXPECT_FALSE(path_exists(target));
    ASSERT_TRUE(file->commit());
    EXPECT_EQ(*read_file(target), "hello");
    struct stat st;
    ASSERT_EQ(::stat(target.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(FilesTest, UncommittedAtomicFileLeavesNothingBehind) {
    std::string target = m_dir.path() + "/never.txt";
    {
        auto file = AtomicFile::create(target);
        ASSERT_TRUE(file);
        ASSERT_TRUE(file->writer().write("partial"));
    }
    auto listing = run_listing(m_dir.path());
    EXPECT_TRUE(listing.empty()) << listing;
}

// A result file a user names: a plain one is replaced whole; through a symlink the link stays and its target
// gets the bytes; a FIFO (as /dev/termination-log or /dev/stdout may be) is written to, never replaced.
TEST_F(FilesTest, ANamedFileIsReplacedWholeOrWrittenThroughWhenItIsNoPlainFile) {
    std::string plain = m_dir.path() + "/plain";
    ASSERT_TRUE(write_file_atomic(plain, "old contents, longer\n"));
    ASSERT_TRUE(write_named_file(plain, "new\n"));
    EXPECT_EQ(*read_file(plain), "new\n");

    std::string target = m_dir.path() + "/target", link = m_dir.path() + "/link";
    ASSERT_TRUE(write_file_atomic(target, "old\n"));
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    ASSERT_TRUE(write_named_file(link, "through\n"));
    struct stat st {};
    ASSERT_EQ(::lstat(link.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the symlink was replaced";
    EXPECT_EQ(*read_file(target), "through\n");

    std::string fifo = m_dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto reader = std::async(std::launch::async, [&] { return read_file(fifo); });
    ASSERT_TRUE(write_named_file(fifo, "piped\n"));
    auto read = reader.get();
    ASSERT_TRUE(read) << read.error().message();
    EXPECT_EQ(*read, "piped\n");
    ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";

    auto refused = write_named_file(m_dir.path(), "x");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("is a directory"), std::string::npos) << refused.error().message();
}

TEST_F(FilesTest, ReadFileRefusesFilesOverTheLimit) {
    std::string path = m_dir.path() + "/big";
    ASSERT_TRUE(write_file_atomic(path, std::string(100, 'x')));
    auto result = read_file(path, 10);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find(path), std::string::npos);
}

TEST_F(FilesTest, MakeDirectoriesCreatesEveryLevelAndAcceptsExisting) {
    std::string path = m_dir.path() + "/a/b/c";
    ASSERT_TRUE(make_directories(path));
    ASSERT_TRUE(make_directories(path));
    EXPECT_TRUE(path_exists(path));
}

TEST_F(FilesTest, ReadLinkAtReturnsTargetsLongerThanItsFirstBuffer) {
    std::string target(3000, 'x');
    ASSERT_EQ(::symlink(target.c_str(), (m_dir.path() + "/link").c_str()), 0);
    int dir = ::open(m_dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir, 0);
    auto read = read_link_at(dir, "link", "link");
    ::close(dir);
    ASSERT_TRUE(read) << read.error().message();
    EXPECT_EQ(*read, target);
}

TEST_F(FilesTest, ReadXattrsReturnsEveryAttributeWithItsValue) {
    std::string path = m_dir.path() + "/file";
    ASSERT_TRUE(write_file_atomic(path, "x"));
    std::string big(1000, 'v');  // ext4 keeps a file's attributes in one block
    if (::setxattr(path.c_str(), "user.small", "1", 1, 0) != 0) GTEST_SKIP() << "no user xattrs on " << path;
    ASSERT_EQ(::setxattr(path.c_str(), "user.big", big.data(), big.size(), 0), 0);
    auto xattrs = read_xattrs(-1, path);
    ASSERT_TRUE(xattrs) << xattrs.error().message();
    std::sort(xattrs->begin(), xattrs->end());
    std::vector<std::pair<std::string, std::string>> expected = {{"user.big", big}, {"user.small", "1"}};
    std::erase_if(*xattrs, [](const auto& xattr) { return !xattr.first.starts_with("user."); });
    EXPECT_EQ(*xattrs, expected);
}

TEST(ParentPath, HandlesRootRelativeAndTrailingSlashes) {
    EXPECT_EQ(parent_path("a/b/c"), "a/b");
    EXPECT_EQ(parent_path("/a"), "/");
    EXPECT_EQ(parent_path("c"), ".");
    EXPECT_EQ(parent_path("a/b/"), "a");
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

void on_signal(int) {}

// Interrupts `target` with SIGUSR1 (installed without SA_RESTART, so blocked calls fail with EINTR) until
// `done`, and counts the signals sent.
class Interrupter {
public:
    explicit Interrupter(pthread_t target) : m_target(target) {
        struct sigaction action {};
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        ::sigaction(SIGUSR1, &action, &m_previous);
        m_thread = std::thread([this] {
            while (!m_done) {
                ::pthread_kill(m_target, SIGUSR1);
                ++m_sent;
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        });
    }
    ~Interrupter() {
        m_done = true;
        m_thread.join();
        ::sigaction(SIGUSR1, &m_previous, nullptr);
    }
    int sent() const { return m_sent; }

private:
    pthread_t m_target;
    struct sigaction m_previous {};
    std::atomic<bool> m_done{false};
    std::atomic<int> m_sent{0};
    std::thread m_thread;
};

// A pipe whose reader drains slowly, so that writes into it block and signals interrupt them.
std::string slow_drain(int fd) {
    std::string received;
    char buffer[4096];
    while (true) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) return received;
        received.append(buffer, static_cast<size_t>(n));
    }
}

TEST(FilesInterrupted, CopyFileDataRetriesWhatSignalsInterrupt) {
    auto dir = TempDir::create(default_temp_parent(), "kiln-eintr-test-");
    ASSERT_TRUE(dir);
    std::string content;
    for (int i = 0; content.size() < (2 << 20); ++i) content += std::to_string(i * 7919) + '\n';
    ASSERT_TRUE(write_file_atomic(dir->path() + "/source", content));
    UniqueFd in(::open((dir->path() + "/source").c_str(), O_RDONLY | O_CLOEXEC));
    auto pipe = make_pipe();
    ASSERT_TRUE(in && pipe);
    std::future<std::string> drained = std::async(std::launch::async, slow_drain, pipe->first.get());
    Status copied;
    int sent = 0;
    {
        Interrupter interrupter(::pthread_self());
        copied = copy_file_data(in.get(), pipe->second.get(), "a pipe");
        sent = interrupter.sent();
    }
    pipe->second.reset();
    ASSERT_TRUE(copied) << copied.error().message();
    EXPECT_GT(sent, 10) << "the copy was never interrupted: the test proves nothing";
    EXPECT_EQ(drained.get(), content);
}

TEST(FilesInterrupted, FdWriterRetriesWhatSignalsInterrupt) {
    std::string content(1 << 20, 'k');
    auto pipe = make_pipe();
    ASSERT_TRUE(pipe);
    std::future<std::string> drained = std::async(std::launch::async, slow_drain, pipe->first.get());
    Status written;
    int sent = 0;
    {
        Interrupter interrupter(::pthread_self());
        FdWriter writer(pipe->second.get(), "a pipe");
        written = writer.write(content);
        sent = interrupter.sent();
    }
    pipe->second.reset();
    ASSERT_TRUE(written) << written.error().message();
    EXPECT_GT(sent, 10);
    EXPECT_EQ(drained.get(), content);
}

TEST(StaleTempFiles, OnlyUnlockedOldFilesWithThePrefixAreRemoved) {
    auto dir = TempDir::create(default_temp_parent(), "kiln-stale-test-");
    ASSERT_TRUE(dir);
    const std::string& d = dir->path();
    auto live = AtomicFile::create(d + "/blob");
    ASSERT_TRUE(live) << live.error().message();
    ASSERT_TRUE(write_file_atomic(d + "/blob.tmp-orphan", "x"));
    ASSERT_TRUE(write_file_atomic(d + "/blob.tmp-fresh", "x"));
    ASSERT_TRUE(write_file_atomic(d + "/other.tmp-orphan", "x"));
    timespec long_ago[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
    for (const char* name : {"/blob.tmp-orphan", "/other.tmp-orphan"})
        ASSERT_EQ(::utimensat(AT_FDCWD, (d + name).c_str(), long_ago, 0), 0);
    std::string live_name;
    for (const auto& entry : std::filesystem::directory_iterator(d)) {
        std::string name = entry.path().filename();
        if (name.starts_with("blob.tmp-") && name != "blob.tmp-orphan" && name != "blob.tmp-fresh") live_name = name;
    }
    ASSERT_FALSE(live_name.empty());
    ASSERT_EQ(::utimensat(AT_FDCWD, (d + "/" + live_name).c_str(), long_ago, 0), 0);

    auto removed = remove_stale_temp_files(d, "blob");
    ASSERT_TRUE(removed) << removed.error().message();
    EXPECT_EQ(*removed, 1u);
    EXPECT_FALSE(path_exists(d + "/blob.tmp-orphan"));
    EXPECT_TRUE(path_exists(d + "/blob.tmp-fresh")) << "too young: its writer may not have locked it yet";
    EXPECT_TRUE(path_exists(d + "/other.tmp-orphan")) << "another prefix";
    EXPECT_TRUE(path_exists(d + "/" + live_name)) << "a live writer holds it";
    ASSERT_TRUE(live->commit());
}

TEST(UniqueNames, SuffixesDoNotRepeat) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(unique_name_suffix()).second);
    EXPECT_EQ(seen.begin()->size(), 16u);
}

}  // namespace
}  // namespace kiln
