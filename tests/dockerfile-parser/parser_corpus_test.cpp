// buildkit's parser corpus: golden dumps, negative cases, line ranges, heredocs and warnings.

#include <nlohmann/json.hpp>

#include "corpus_support.hpp"
#include "dockerfile-parser/ast.hpp"

namespace kiln::dockerfile {
namespace {

using testing::CorpusTally;
using testing::read_text;

std::string parser_corpus() { return testing::corpora_dir() + "/buildkit-parser"; }

bool load_json(const std::string& path, nlohmann::json& json) {
    std::string text;
    if (!read_text(path, text)) return false;
    json = nlohmann::json::parse(text, nullptr, false);
    return !json.is_discarded();
}

TEST(ParserCorpus, UpstreamTestfilesDumpByteForByte) {
    std::string dir = parser_corpus() + "/testfiles";
    SKIP_WITHOUT(dir);
    CorpusTally tally("buildkit-parser/testfiles");
    for (const std::string& name : testing::subdirectories(dir)) {
        std::string text, expected;
        if (!read_text(dir + "/" + name + "/Dockerfile", text) || !read_text(dir + "/" + name + "/result", expected)) {
            tally.fail(name, "missing Dockerfile or result");
            continue;
        }
        Result<Ast> ast = parse_ast(text, "Dockerfile");
        if (!ast) {
            tally.fail(name, "parse failed: " + ast.error().message());
        } else if (std::string got = dump(*ast); got != expected) {
            tally.fail(name, "dump differs: got " + testing::visible(got, 600));
        } else {
            tally.pass();
        }
    }
    tally.report();
}

TEST(ParserCorpus, NegativeTestfilesFail) {
    std::string dir = parser_corpus() + "/testfiles-negative";
    SKIP_WITHOUT(dir);
    CorpusTally tally("buildkit-parser/testfiles-negative");
    for (const std::string& name : testing::subdirectories(dir)) {
        std::string text;
        read_text(dir + "/" + name + "/Dockerfile", text);
        Result<Ast> ast = parse_ast(text, "Dockerfile");
        if (ast)
            tally.fail(name, "parsed, but must fail");
        else
            tally.pass();
    }
    tally.report();
}

TEST(ParserCorpus, TestfileLineRanges) {
    std::string path = parser_corpus() + "/testfile-line/Dockerfile";
    SKIP_WITHOUT(path);
    std::string text;
    ASSERT_TRUE(read_text(path, text));
    Result<Ast> ast = parse_ast(text, "Dockerfile");
    ASSERT_TRUE(ast) << ast.error().message();
    EXPECT_EQ(ast->start_line, 5);
    EXPECT_EQ(ast->end_line, 31);
    ASSERT_EQ(ast->children.size(), 3u);
    const std::pair<int, int> expected[] = {{5, 5}, {11, 12}, {17, 31}};
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(ast->children[i].start_line, expected[i].first) << "instruction " << i;
        EXPECT_EQ(ast->children[i].end_line, expected[i].second) << "instruction " << i;
    }
}

// Every detail.json under derived/: dumps, line ranges, warnings, heredocs, errors.
void check_detail_file(const std::string& detail_path, const std::string& base_dir, CorpusTally& tally) {
    nlohmann::json entries;
    if (!load_json(detail_path, entries)) {
        tally.fail(detail_path, "unreadable JSON");
        return;
    }
    for (const auto& entry : entries) {
        std::string file = entry.value("file", "Dockerfile");
        std::string text;
        if (!read_text(base_dir + "/" + file, text)) {
            tally.fail(file, "missing");
            continue;
        }
        std::string difference = testing::compare_detail(entry, text);
        if (difference.empty())
            tally.pass();
        else
            tally.fail(file, difference);
    }
}

TEST(ParserCorpus, UpstreamTestfilesDetailLineRangesAndWarnings) {
    std::string path = parser_corpus() + "/derived/upstream-testfiles.detail.json";
    SKIP_WITHOUT(path);
    CorpusTally tally("buildkit-parser/derived/upstream-testfiles.detail.json");
    check_detail_file(path, parser_corpus(), tally);
    tally.report();
}

TEST(ParserCorpus, TestfileLineDetail) {
    std::string path = parser_corpus() + "/derived/testfile-line.detail.json";
    SKIP_WITHOUT(path);
    CorpusTally tally("buildkit-parser/derived/testfile-line.detail.json");
    check_detail_file(path, parser_corpus(), tally);
    tally.report();
}

class DerivedCase : public ::testing::TestWithParam<const char*> {};

TEST_P(DerivedCase, DumpAndDetailMatch) {
    std::string dir = parser_corpus() + "/derived/" + GetParam();
    SKIP_WITHOUT(dir);
    CorpusTally tally(std::string("buildkit-parser/derived/") + GetParam());
    std::string text, expected;
    ASSERT_TRUE(read_text(dir + "/Dockerfile", text));
    ASSERT_TRUE(read_text(dir + "/result", expected));
    Result<Ast> ast = parse_ast(text, "Dockerfile");
    if (!ast)
        tally.fail("result", ast.error().message());
    else if (dump(*ast) != expected)
        tally.fail("result", "dump differs: " + testing::visible(dump(*ast), 600));
    else
        tally.pass();
    check_detail_file(dir + "/detail.json", dir, tally);
    tally.report();
}

INSTANTIATE_TEST_SUITE_P(Derived, DerivedCase,
                         ::testing::Values("heredoc-extract", "heredoc-json-form", "empty-continuation-warnings"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                             std::string name = param_info.param;
                             for (char& c : name)
                                 if (c == '-') c = '_';
                             return name;
                         });

TEST(ParserCorpus, HeredocWords) {
    std::string path = parser_corpus() + "/derived/heredoc-words.json";
    SKIP_WITHOUT(path);
    nlohmann::json vectors;
    ASSERT_TRUE(load_json(path, vectors));
    CorpusTally tally("buildkit-parser/derived/heredoc-words.json");
    for (const auto& vector : vectors) {
        std::string input = vector["input"].get<std::string>();
        Result<std::optional<Heredoc>> heredoc = parse_heredoc(input);
        bool expect_error = vector["error"].get<bool>();
        if (expect_error) {
            if (heredoc)
                tally.fail(input, "parsed, but must fail");
            else
                tally.pass();
            continue;
        }
        if (!heredoc) {
            tally.fail(input, "failed: " + heredoc.error().message());
            continue;
        }
        const auto& want = vector["heredoc"];
        if (want.is_null()) {
            if (*heredoc)
                tally.fail(input, "is not a heredoc, got " + (*heredoc)->name);
            else
                tally.pass();
            continue;
        }
        if (!*heredoc) {
            tally.fail(input, "not recognized as a heredoc");
            continue;
        }
        const Heredoc& got = **heredoc;
        if (got.name != want["name"].get<std::string>() || got.expand != want["expand"].get<bool>() ||
            got.chomp != want["chomp"].get<bool>() || got.fd != want["fd"].get<std::uint64_t>())
            tally.fail(input, "got name " + got.name + " expand " + std::to_string(got.expand) + " chomp " +
                                  std::to_string(got.chomp));
        else
            tally.pass();
    }
    tally.report();
}

}  // namespace
}  // namespace kiln::dockerfile
