// ShellExpander beyond the corpus: the other escape character, patterns, replacements, limits.

#include <gtest/gtest.h>

#include "dockerfile-parser/shell_expand.hpp"

namespace kiln::dockerfile {
namespace {

std::string word(std::string_view text, const std::vector<std::string>& env = {}, char escape = '\\') {
    Result<std::string> result = ShellExpander(escape).process_word(text, env_from_list(env));
    EXPECT_TRUE(result) << text << ": " << (result ? "" : result.error().message());
    return result ? *result : "<error>";
}

std::string error_of(std::string_view text, const std::vector<std::string>& env = {}) {
    Result<std::string> result = ShellExpander().process_word(text, env_from_list(env));
    EXPECT_FALSE(result) << text << " gave " << (result ? *result : "");
    return result ? "" : result.error().message();
}

TEST(ShellExpand, BacktickEscapeLeavesBackslashesLiteral) {
    EXPECT_EQ(word("C:\\dir\\$X `$X", {"X=v"}, '`'), "C:\\dir\\v $X");
}

TEST(ShellExpand, EnvListLastDefinitionWinsAndBareNameIsEmpty) {
    EXPECT_EQ(word("[$A][$B]", {"A=1", "A=2", "B"}), "[2][]");
    Result<ShellExpansion> expansion = ShellExpander().expand("$B", env_from_list({"B"}));
    ASSERT_TRUE(expansion);
    EXPECT_EQ(expansion->matched, (std::set<std::string>{"B"}));
}

TEST(ShellExpand, LookupFunctionIsUsedAsIs) {
    EnvLookup lookup = [](std::string_view name) -> std::optional<std::string> {
        if (name == "HOME") return "/root";
        return std::nullopt;
    };
    EXPECT_EQ(*ShellExpander().process_word("${HOME}/x${NOPE:-y}", lookup), "/root/xy");
}

TEST(ShellExpand, PrefixAndSuffixRemoval) {
    std::vector<std::string> env{"P=/usr/local/bin/tool.tar.gz"};
    EXPECT_EQ(word("${P#*/}", env), "usr/local/bin/tool.tar.gz");
    EXPECT_EQ(word("${P##*/}", env), "tool.tar.gz");
    EXPECT_EQ(word("${P%.*}", env), "/usr/local/bin/tool.tar");
    EXPECT_EQ(word("${P%%.*}", env), "/usr/local/bin/tool");
    EXPECT_EQ(word("${P%%nomatch}", env), "/usr/local/bin/tool.tar.gz");
}

TEST(ShellExpand, ReplaceFirstAndAll) {
    std::vector<std::string> env{"V=a-b-c"};
    EXPECT_EQ(word("${V/-/_}", env), "a_b-c");
    EXPECT_EQ(word("${V//-/_}", env), "a_b_c");
    EXPECT_EQ(word("${V//?/x}", env), "xxxxx");
}

TEST(ShellExpand, ReplaceAllExpandsDollarZeroAsTheMatch) {
    // Go's ReplaceAllString interprets $0 in the replacement, and the replacement keeps its escapes (buildkit
    // lexes it raw); an unescaped $0 is the empty positional parameter instead.
    EXPECT_EQ(word("${V//b/[\\$0]}", {"V=abc"}), "a[\\b]c");
    EXPECT_EQ(word("${V//b/[$0]}", {"V=abc"}), "a[]c");
}

TEST(ShellExpand, InvalidPatternEscapeIsAnError) {
    EXPECT_NE(error_of("${V#\\x}", {"V=x"}).find("invalid pattern"), std::string::npos);
}

TEST(ShellExpand, ErrorsNameTheWord) {
    std::string error = error_of("${X:?must be set}");
    EXPECT_EQ(error, "failed to process \"${X:?must be set}\": X: must be set");
}

TEST(ShellExpand, ProcessWordsSplitsOnlyUnquotedExpansions) {
    Result<std::vector<std::string>> words =
        ShellExpander().process_words("a $V \"$V\" '$V'", env_from_list({"V=x  y"}));
    ASSERT_TRUE(words);
    EXPECT_EQ(*words, (std::vector<std::string>{"a", "x", "y", "x  y", "$V"}));
}

TEST(ShellExpand, KeepOptionsPreserveQuotesEscapesAndUnsetVariables) {
    ShellExpander raw('\\', ShellLexOptions{.keep_quotes = true, .keep_escapes = true, .keep_unset = true});
    EXPECT_EQ(*raw.process_word("'a'\\ \"$U\" ${U:-x}", EnvLookup()), "'a'\\ \"$U\" ${U:-x}");
}

// An empty pattern puts the replacement between every character (Go's rule, as BuildKit does), so each level
// of nesting multiplies the length: found by fuzzing, where four levels on a 4-byte value took seconds, and a
// few more would fill the memory. Past 1 MiB an expansion is an error.
TEST(ShellExpand, NestedEmptyPatternReplacementsAreBoundedNotExponential) {
    EXPECT_EQ(word("${F///-}", {"F=ab"}), "-a-b-");
    std::string nested = "x";
    for (int i = 0; i < 12; ++i) nested = "${F///" + nested + "}";
    std::string error = error_of(nested, {"F=dir/"});
    EXPECT_NE(error.find("larger than 1048576 bytes"), std::string::npos) << error;
}

TEST(ShellExpand, DeepNestingIsAnErrorNotACrash) {
    std::string text;
    for (int i = 0; i < 5000; ++i) text += "${A:-";
    text += std::string(5000, '}');
    EXPECT_NE(error_of(text).find("nested too deeply"), std::string::npos);
}

TEST(ShellExpand, PathologicalPatternStaysFast) {
    std::string value(20000, 'a');
    std::string pattern;
    for (int i = 0; i < 30; ++i) pattern += "*a";
    pattern += "b";
    EXPECT_EQ(word("${V#" + pattern + "}", {"V=" + value}), value);
}

}  // namespace
}  // namespace kiln::dockerfile
