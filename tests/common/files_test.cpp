#include "common/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>

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
