// The AST stage on inputs the corpora do not cover: directives, limits, errors, flags and hostile text.

#include <gtest/gtest.h>

#include <random>

#include "dockerfile-parser/ast.hpp"

namespace kiln::dockerfile {
namespace {

Ast parse_ok(std::string_view text) {
    Result<Ast> ast = parse_ast(text, "Dockerfile");
    EXPECT_TRUE(ast) << (ast ? "" : ast.error().message());
    return ast ? std::move(*ast) : Ast{};
}

std::string parse_error(std::string_view text) {
    Result<Ast> ast = parse_ast(text, "ctx/Dockerfile");
    EXPECT_FALSE(ast) << "parsed: " << (ast ? dump(*ast) : "");
    return ast ? "" : ast.error().message();
}

TEST(Ast, EscapeDirectiveChangesTheContinuationCharacter) {
    Ast ast = parse_ok("# escape=`\nFROM a\nRUN echo \\\n  `\n  b\n");
    EXPECT_EQ(ast.escape, '`');
    EXPECT_EQ(dump(ast), "(from \"a\")\n(run \"echo \\\\\")\n(b \"\")\n");
}

TEST(Ast, DirectivesAreRecordedWithTheirLines) {
    Ast ast = parse_ok("# syntax=docker/dockerfile:1\n#CHECK = skip=all \nFROM a\n");
    ASSERT_EQ(ast.directives.size(), 2u);
    EXPECT_EQ(ast.directives[0].name, "syntax");
    EXPECT_EQ(ast.directives[0].value, "docker/dockerfile:1");
    EXPECT_EQ(ast.directives[1].name, "check");
    EXPECT_EQ(ast.directives[1].value, "skip=all");
    EXPECT_EQ(ast.directives[1].line, 2);
}

TEST(Ast, RepeatedDirectiveIsAnErrorNamingTheLine) {
    std::string error = parse_error("# escape=`\n# escape=\\\nFROM a\n");
    EXPECT_NE(error.find("ctx/Dockerfile:2:"), std::string::npos) << error;
    EXPECT_NE(error.find("only one escape parser directive"), std::string::npos) << error;
}

TEST(Ast, InvalidEscapeValueIsAnError) {
    EXPECT_NE(parse_error("# escape=x\nFROM a\n").find("invalid escape"), std::string::npos);
}

TEST(Ast, DirectiveAfterAnInstructionIsAComment) {
    Ast ast = parse_ok("FROM a\n# escape=`\nRUN x \\\ny\n");
    EXPECT_EQ(ast.escape, '\\');
    EXPECT_TRUE(ast.directives.empty());
    EXPECT_EQ(dump(ast.children[1]), "run \"x y\"");
}

TEST(Ast, ByteOrderMarkOnTheFirstLineIsDropped) {
    Ast ast = parse_ok("\xEF\xBB\xBF# escape=`\nFROM a\n");
    EXPECT_EQ(ast.escape, '`');
    EXPECT_EQ(dump(ast), "(from \"a\")\n");
}

TEST(Ast, CrlfLineEndingsAreTrimmed) {
    Ast ast = parse_ok("FROM a\r\nRUN b \\\r\n  c\r\n");
    EXPECT_EQ(dump(ast), "(from \"a\")\n(run \"b   c\")\n");
    EXPECT_EQ(ast.children[1].end_line, 3);
}

TEST(Ast, LineOfMaximumLengthIsAccepted) {
    std::string text = "RUN " + std::string(65535 - 4, 'x') + "\n";
    EXPECT_EQ(parse_ok(text).children.size(), 1u);
}

TEST(Ast, LineLongerThanTheLimitIsAnError) {
    std::string text = "FROM a\nRUN " + std::string(65536 - 4, 'x') + "\n";
    std::string error = parse_error(text);
    EXPECT_NE(error.find("ctx/Dockerfile:2: dockerfile line greater than max allowed size of 65535"),
              std::string::npos)
        << error;
}

// A NUL would cut the RUN's shell text short: "RUN echo a\0; echo HIDDEN > /hidden" ran only "echo a".
TEST(Ast, NulByteInAnInstructionIsAnErrorNamingItsLine) {
    std::string text = std::string("FROM a\nRUN echo a") + '\0' + "; echo HIDDEN > /hidden\n";
    EXPECT_EQ(parse_error(text), "ctx/Dockerfile:2: NUL byte at column 11: a Dockerfile is text");
}

TEST(Ast, NulByteInALabelValueIsAnError) {
    std::string text = std::string("FROM a\nLABEL a=x") + '\0' + "y\n";
    EXPECT_NE(parse_error(text).find("ctx/Dockerfile:2: NUL byte"), std::string::npos);
}

TEST(Ast, NulByteInACommentOrHeredocBodyIsAnError) {
    EXPECT_NE(parse_error(std::string("FROM a\n# x") + '\0' + "\nRUN true\n").find("ctx/Dockerfile:2: NUL byte"),
              std::string::npos);
    std::string heredoc = std::string("FROM a\nRUN <<EOF\necho a") + '\0' + "b\nEOF\n";
    EXPECT_NE(parse_error(heredoc).find("ctx/Dockerfile:3: NUL byte"), std::string::npos);
}

TEST(Ast, EmptyFileHasNoInstructions) {
    EXPECT_NE(parse_error("\n# only a comment\n\n").find("file with no instructions"), std::string::npos);
}

TEST(Ast, ParseErrorNamesFileLineAndInstruction) {
    std::string error = parse_error("FROM a\n\nENV \\\n  ONLYKEY\n");
    EXPECT_EQ(error, "ctx/Dockerfile:3: ENV must have two arguments (in: \"ENV   ONLYKEY\")");
}

TEST(Ast, JsonArrayWithNonStringsIsAnError) {
    EXPECT_NE(parse_error("FROM a\nCMD [\"a\", 1]\n").find("arrays must be comprised of strings only"),
              std::string::npos);
}

TEST(Ast, InvalidJsonFallsBackToShellForm) {
    Ast ast = parse_ok("CMD [\"a\", ]\nCMD [\"a\"] b\nCMD [\"\\ud83d\\ude00\", \"\\ud800x\"]\n");
    EXPECT_EQ(dump(ast.children[0]), "cmd \"[\\\"a\\\", ]\"");
    EXPECT_FALSE(ast.children[1].json_form);
    ASSERT_TRUE(ast.children[2].json_form);
    EXPECT_EQ(ast.children[2].args[0], "\xF0\x9F\x98\x80");
    EXPECT_EQ(ast.children[2].args[1], "\xEF\xBF\xBDx");
}

TEST(Ast, DeeplyNestedJsonIsNotJsonRatherThanACrash) {
    std::string text = "CMD [\"a\", " + std::string(20000, '[') + "\n";
    Ast ast = parse_ok(text);
    EXPECT_FALSE(ast.children[0].json_form);
}

TEST(Ast, FlagsParseForAnyInstructionWithQuotesAndEscapes) {
    Ast ast = parse_ok("WORKDIR --x=\"a b\" --y=c\\ d /w\nRUN --mount=type=cache,target=/c -- echo\n");
    EXPECT_EQ(ast.children[0].flags, (std::vector<std::string>{"--x=a b", "--y=c d"}));
    EXPECT_EQ(ast.children[0].args, (std::vector<std::string>{"/w"}));
    EXPECT_EQ(dump(ast.children[1]), "run [\"--mount=type=cache,target=/c\"] \"echo\"");
}

TEST(Ast, OnbuildNestsItsTrigger) {
    Ast ast = parse_ok("ONBUILD RUN [\"a\"]\nONBUILD\n");
    EXPECT_EQ(dump(ast.children[0]), "onbuild (run \"a\")");
    EXPECT_EQ(dump(ast.children[1]), "onbuild");
}

TEST(Ast, OnbuildNestingIsBounded) {
    std::string line;
    for (int i = 0; i < 100; ++i) line += "ONBUILD ";
    EXPECT_NE(parse_error(line + "RUN x\n").find("nested too deeply"), std::string::npos);
}

TEST(Ast, HeredocUnderOnbuildIsRead) {
    Ast ast = parse_ok("ONBUILD RUN <<EOF\necho hi\nEOF\nUSER x\n");
    ASSERT_EQ(ast.children.size(), 2u);
    ASSERT_EQ(ast.children[0].heredocs.size(), 1u);
    EXPECT_EQ(ast.children[0].heredocs[0].content, "echo hi\n");
    EXPECT_EQ(ast.children[0].end_line, 3);
}

TEST(Ast, UnterminatedHeredocIsAnError) {
    std::string error = parse_error("FROM a\nRUN <<EOF\necho\n");
    EXPECT_NE(error.find("ctx/Dockerfile:2: unterminated heredoc"), std::string::npos) << error;
}

TEST(Ast, ChompRemovesLeadingTabsOfEveryLine) {
    EXPECT_EQ(chomp_heredoc_content("\t\ta\n\tb\t\nc\n"), "a\nb\t\nc\n");
}

TEST(Ast, CommentsAboveAnInstructionAreKept) {
    Ast ast = parse_ok("FROM a\n# first\n# second\nRUN x\n");
    EXPECT_EQ(ast.children[1].comments, (std::vector<std::string>{"first", "second"}));
}

TEST(Ast, DumpQuotesLikeGo) {
    Ast ast = parse_ok("LABEL a=\"\x01\x7f\xff\xc2\xa0\xe2\x80\x8b\xf0\x9f\x98\x80\"\n");
    EXPECT_EQ(dump(ast.children[0]), "label \"a\" \"\\\"\\x01\\x7f\xef\xbf\xbd\\u00a0\\u200b\xf0\x9f\x98\x80\\\"\" \"=\"");
    Ast raw = parse_ok("RUN \x01\x7f\xff\xc2\xa0\n");
    EXPECT_EQ(dump(raw.children[0]), "run \"\\x01\\x7f\\xff\"");
}

// Random mixtures of Dockerfile fragments: the parser must return (a value or an error), never crash or hang.
TEST(Ast, HostileInputNeverCrashes) {
    using namespace std::literals;
    const std::string_view fragments[] = {"FROM ", "RUN ", "ONBUILD ", "COPY ", "ENV ", "LABEL ", "ARG ", "HEALTHCHECK ",
                               "<<", "<<-", "EOF", "'", "\"", "\\", "`", "\n", "\r", "\t", " ", "[", "]", "{",
                               "--", "=", "$", "${", "}", "#", "# escape=`\n", "\xff", "\xc2\xa0", "\0"sv, "a"};
    std::mt19937 random(12345);
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        int pieces = static_cast<int>(random() % 60);
        for (int i = 0; i < pieces; ++i) text += fragments[random() % std::size(fragments)];
        Result<Ast> ast = parse_ast(text, "fuzz");
        if (ast) (void)dump(*ast);
    }
    SUCCEED();
}

}  // namespace
}  // namespace kiln::dockerfile
