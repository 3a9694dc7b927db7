#include "builder/sources/context.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

class ContextTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-context-"));
        for (const char* file : {"a.txt", "b.txt", "c.md", "dir/x.txt", "dir/y.txt", "other/x.txt"}) {
            ASSERT_TRUE(make_directories(parent_path(m_dir.path() + "/" + file)));
            ASSERT_TRUE(write_file_atomic(m_dir.path() + "/" + file, file));
        }
        m_root = std::make_unique<RootFs>(std::move(*RootFs::open(m_dir.path())));
    }
    TempDir m_dir;
    std::unique_ptr<RootFs> m_root;
};

TEST_F(ContextTest, PlainPathNamesItselfAndMissingIsAnError) {
    auto matched = expand_sources(*m_root, "./dir/x.txt", nullptr);
    ASSERT_TRUE(matched);
    EXPECT_EQ(*matched, std::vector<std::string>{"dir/x.txt"});
    auto missing = expand_sources(*m_root, "nope.txt", nullptr);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("nope.txt"), std::string::npos);
}

TEST_F(ContextTest, WildcardsMatchPerComponentInSortedOrder) {
    auto matched = expand_sources(*m_root, "*.txt", nullptr);
    ASSERT_TRUE(matched);
    EXPECT_EQ(*matched, (std::vector<std::string>{"a.txt", "b.txt"}));
    auto nested = expand_sources(*m_root, "*/x.txt", nullptr);
    ASSERT_TRUE(nested);
    EXPECT_EQ(*nested, (std::vector<std::string>{"dir/x.txt", "other/x.txt"}));
}

TEST_F(ContextTest, WildcardMatchingNothingIsAnEmptyListAsInBuildKit) {
    auto none = expand_sources(*m_root, "*.none", nullptr);
    ASSERT_TRUE(none) << none.error().message();
    EXPECT_TRUE(none->empty());
    // The fixed part before the wildcard must exist, though.
    EXPECT_FALSE(expand_sources(*m_root, "missing/*.txt", nullptr));
}

TEST_F(ContextTest, WildcardsFollowFilepathMatchRules) {
    auto classes = expand_sources(*m_root, "[ab].txt", nullptr);
    ASSERT_TRUE(classes);
    EXPECT_EQ(*classes, (std::vector<std::string>{"a.txt", "b.txt"}));
    auto negated = expand_sources(*m_root, "[^a].*", nullptr);
    ASSERT_TRUE(negated);
    EXPECT_EQ(*negated, (std::vector<std::string>{"b.txt", "c.md"}));
    auto single = expand_sources(*m_root, "?.md", nullptr);
    ASSERT_TRUE(single);
    EXPECT_EQ(*single, std::vector<std::string>{"c.md"});
    // "**" is no globstar in a COPY source: it stays within one path component.
    auto stars = expand_sources(*m_root, "**.txt", nullptr);
    ASSERT_TRUE(stars);
    EXPECT_EQ(*stars, (std::vector<std::string>{"a.txt", "b.txt"}));
    auto bad = expand_sources(*m_root, "[a-.txt", nullptr);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("[a-.txt"), std::string::npos) << bad.error().message();
}

TEST_F(ContextTest, EscapedWildcardIsLiteralAndBangIsAnOrdinaryCharacter) {
    ASSERT_TRUE(write_file_atomic(m_dir.path() + "/star*", "x"));
    ASSERT_TRUE(write_file_atomic(m_dir.path() + "/!bang", "x"));
    auto escaped = expand_sources(*m_root, "dir/../sta?\\*", nullptr);
    ASSERT_TRUE(escaped) << escaped.error().message();
    EXPECT_EQ(*escaped, std::vector<std::string>{"star*"});
    auto bang = expand_sources(*m_root, "!b*", nullptr);
    ASSERT_TRUE(bang) << bang.error().message();
    EXPECT_EQ(*bang, std::vector<std::string>{"!bang"});
}

TEST_F(ContextTest, SymlinkedDirectoriesMatchByNameButAreNotSearched) {
    ASSERT_EQ(::symlink("dir", (m_dir.path() + "/linked").c_str()), 0);
    auto below = expand_sources(*m_root, "*/y.txt", nullptr);
    ASSERT_TRUE(below);
    EXPECT_EQ(*below, std::vector<std::string>{"dir/y.txt"});  // not linked/y.txt
    auto named = expand_sources(*m_root, "li*", nullptr);
    ASSERT_TRUE(named);
    EXPECT_EQ(*named, std::vector<std::string>{"linked"});
    // Before the first wildcard, a symlink is followed like any path.
    auto through = expand_sources(*m_root, "linked/*.txt", nullptr);
    ASSERT_TRUE(through);
    EXPECT_EQ(*through, (std::vector<std::string>{"linked/x.txt", "linked/y.txt"}));
}

TEST_F(ContextTest, WildcardBaseIsThePartBeforeTheFirstWildcard) {
    EXPECT_EQ(wildcard_base("src/*/x.txt"), "src");
    EXPECT_EQ(wildcard_base("./*.txt"), "");
    EXPECT_EQ(wildcard_base("/a/b/c"), "a/b/c");
    EXPECT_TRUE(has_wildcards("a/[bc]"));
    EXPECT_FALSE(has_wildcards("a/b\\*"));
}

TEST_F(ContextTest, IgnoredPathsDoNotMatch) {
    auto ignore = dockerfile::IgnoreMatcher::parse("b.txt\nother\n");
    ASSERT_TRUE(ignore);
    auto matched = expand_sources(*m_root, "*.txt", &*ignore);
    ASSERT_TRUE(matched);
    EXPECT_EQ(*matched, std::vector<std::string>{"a.txt"});
    EXPECT_FALSE(expand_sources(*m_root, "b.txt", &*ignore));
    auto nested = expand_sources(*m_root, "*/x.txt", &*ignore);
    ASSERT_TRUE(nested);
    EXPECT_EQ(*nested, std::vector<std::string>{"dir/x.txt"});
}

TEST_F(ContextTest, PathInRootResolvesSymlinksAndRefusesOutside) {
    ASSERT_EQ(::symlink("dir", (m_dir.path() + "/alias").c_str()), 0);
    auto fd = m_root->open("alias", O_PATH | O_DIRECTORY);
    ASSERT_TRUE(fd);
    auto path = path_in_root(*m_root, fd->get());
    ASSERT_TRUE(path) << path.error().message();
    EXPECT_EQ(*path, "dir");
    UniqueFd outside(::open("/", O_PATH));
    EXPECT_FALSE(path_in_root(*m_root, outside.get()));
}

TEST_F(ContextTest, DockerfileSpecificIgnoreFileWins) {
    ASSERT_TRUE(write_file_atomic(m_dir.path() + "/.dockerignore", "a.txt\n"));
    ASSERT_TRUE(write_file_atomic(m_dir.path() + "/Dockerfile.dev.dockerignore", "b.txt\n"));
    auto context = BuildContext::open(m_dir.path(), m_dir.path() + "/Dockerfile.dev");
    ASSERT_TRUE(context) << context.error().message();
    ASSERT_NE(context->ignore(), nullptr);
    EXPECT_TRUE(context->ignore()->matches("b.txt"));
    EXPECT_FALSE(context->ignore()->matches("a.txt"));
}

}  // namespace
}  // namespace kiln
