// .dockerignore rules, table-driven, plus kaniko's real .dockerignore.

#include <gtest/gtest.h>

#include "corpus_support.hpp"
#include "dockerfile-parser/dockerignore.hpp"

namespace kiln::dockerfile {
namespace {

IgnoreMatcher matcher_of(std::string_view text) {
    Result<IgnoreMatcher> matcher = IgnoreMatcher::parse(text);
    EXPECT_TRUE(matcher) << (matcher ? "" : matcher.error().message());
    return matcher ? std::move(*matcher) : IgnoreMatcher();
}

struct MatchCase {
    const char* patterns;
    const char* path;
    bool excluded;
};

class IgnoreMatch : public ::testing::TestWithParam<MatchCase> {};

TEST_P(IgnoreMatch, DecidesLikeDocker) {
    const MatchCase& c = GetParam();
    EXPECT_EQ(matcher_of(c.patterns).matches(c.path), c.excluded) << "patterns:\n" << c.patterns << "\npath: " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, IgnoreMatch,
    ::testing::Values(
        MatchCase{"*.md", "README.md", true}, MatchCase{"*.md", "docs/README.md", false},
        MatchCase{"*/*.md", "docs/README.md", true}, MatchCase{"**/*.md", "a/b/c.md", true},
        MatchCase{"**/*.md", "c.md", true}, MatchCase{"docs/**", "docs/a/b", true},
        MatchCase{"docs/**", "docs", false}, MatchCase{"a/**/b", "a/b", true},
        MatchCase{"a/**/b", "a/x/y/b", true}, MatchCase{"a/**/b", "a/x/c", false},
        MatchCase{"**", "anything/at/all", true},
        // A directory pattern excludes everything below it.
        MatchCase{"build", "build/out/x.o", true}, MatchCase{"build", "buildx", false},
        // Leading slash, ./ and duplicate slashes are cleaned away.
        MatchCase{"/secret", "secret", true}, MatchCase{"./a//b/", "a/b/c", true},
        MatchCase{"a/../b", "b", true},
        // Comments and blank lines; a '#' later in the line is part of the pattern.
        MatchCase{"# *.md\n\n   \n", "README.md", false}, MatchCase{"a#b", "a#b", true},
        MatchCase{"  spaced.txt  ", "spaced.txt", true},
        // ? and classes never match '/'; escapes make metacharacters literal.
        MatchCase{"?.txt", "a.txt", true}, MatchCase{"?.txt", "ab.txt", false},
        MatchCase{"[a-c].txt", "b.txt", true}, MatchCase{"[^a-c].txt", "b.txt", false},
        MatchCase{"[^a-c].txt", "d.txt", true}, MatchCase{"\\*.txt", "*.txt", true},
        MatchCase{"\\*.txt", "a.txt", false}, MatchCase{"a.b", "axb", false},
        // Exceptions: the last matching pattern wins.
        MatchCase{"*.log\n!keep.log", "keep.log", false}, MatchCase{"*.log\n!keep.log", "drop.log", true},
        MatchCase{"!keep.log\n*.log", "keep.log", true}, MatchCase{"ignore/**\n!ignore/foo", "ignore/foo", false},
        MatchCase{"ignore/**\n!ignore/foo", "ignore/bar", true},
        MatchCase{"dir\n!dir/keep", "dir/keep/inner.txt", false},
        MatchCase{"dir\n!dir/keep", "dir/other.txt", true}));

TEST(IgnoreMatcher, ExceptionBelowAnExcludedDirectoryRequiresDescending) {
    IgnoreMatcher matcher = matcher_of("vendor\n!vendor/keep/**\nnode_modules\n");
    EXPECT_TRUE(matcher.matches("vendor"));
    EXPECT_TRUE(matcher.must_descend("vendor"));
    EXPECT_TRUE(matcher.must_descend("vendor/keep"));
    EXPECT_FALSE(matcher.must_descend("vendor/other"));
    EXPECT_FALSE(matcher.must_descend("node_modules"));
    EXPECT_FALSE(matcher.matches("vendor/keep/a.go"));
    EXPECT_TRUE(matcher.matches("vendor/other/a.go"));
    EXPECT_TRUE(matcher.has_exceptions());
}

TEST(IgnoreMatcher, GlobstarExceptionCanReachAnyDepth) {
    IgnoreMatcher matcher = matcher_of("*\n!**/*.go\n");
    EXPECT_TRUE(matcher.must_descend("a/b/c"));
    EXPECT_FALSE(matcher.matches("a/b/c/x.go"));
    EXPECT_TRUE(matcher.matches("a/b/c/x.c"));
}

TEST(IgnoreMatcher, NoExceptionsMeansNoDescending) {
    IgnoreMatcher matcher = matcher_of("tmp\n");
    EXPECT_FALSE(matcher.has_exceptions());
    EXPECT_FALSE(matcher.must_descend("tmp"));
}

TEST(IgnoreMatcher, MalformedPatternsAreErrors) {
    EXPECT_FALSE(IgnoreMatcher::parse("[a-"));
    EXPECT_FALSE(IgnoreMatcher::parse("[]"));
    EXPECT_FALSE(IgnoreMatcher::parse("trailing\\"));
    Result<IgnoreMatcher> bang = IgnoreMatcher::parse("ok\n!\n");
    ASSERT_FALSE(bang);
    EXPECT_NE(bang.error().message().find("illegal exclusion pattern"), std::string::npos);
}

TEST(IgnoreMatcher, PatternsAreRecordedCleanedWithTheirLines) {
    IgnoreMatcher matcher = matcher_of("\xEF\xBB\xBF# comment\n/a/b/\n! c \r\n");
    ASSERT_EQ(matcher.patterns().size(), 2u);
    EXPECT_EQ(matcher.patterns()[0].pattern, "a/b");
    EXPECT_EQ(matcher.patterns()[0].line, 2);
    EXPECT_EQ(matcher.patterns()[1].pattern, "c");
    EXPECT_TRUE(matcher.patterns()[1].exception);
    EXPECT_EQ(matcher.patterns()[1].line, 3);
}

TEST(IgnoreMatcher, CleanPathFollowsGo) {
    EXPECT_EQ(clean_path(""), ".");
    EXPECT_EQ(clean_path("a//b/./c/.."), "a/b");
    EXPECT_EQ(clean_path("/../a"), "/a");
    EXPECT_EQ(clean_path("../../a"), "../../a");
    EXPECT_EQ(clean_path("a/.."), ".");
}

TEST(IgnoreMatcher, KanikoContextDockerignore) {
    std::string path = testing::corpora_dir() + "/kaniko-integration/.dockerignore";
    SKIP_WITHOUT(path);
    std::string text;
    ASSERT_TRUE(testing::read_text(path, text));
    IgnoreMatcher matcher = matcher_of(text);
    EXPECT_TRUE(matcher.matches("ignore/bar"));
    EXPECT_FALSE(matcher.matches("ignore/foo"));
    EXPECT_FALSE(matcher.matches("context/foo"));
    EXPECT_TRUE(matcher.must_descend("ignore"));
}

}  // namespace
}  // namespace kiln::dockerfile
