// buildkit's shell-word corpus: envVarTest (ProcessWord), wordsTest (ProcessWords) and the derived
// ProcessWordWithMatches vectors.

#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "corpus_support.hpp"
#include "dockerfile-parser/shell_expand.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {
namespace {

using testing::CorpusTally;

std::string shell_corpus() { return testing::corpora_dir() + "/buildkit-shell"; }

TEST(ShellCorpus, EnvVarTestProcessWord) {
    std::string path = shell_corpus() + "/envVarTest";
    SKIP_WITHOUT(path);
    std::string text;
    ASSERT_TRUE(testing::read_text(path, text));
    EnvLookup env = env_from_list({"PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="});
    ShellExpander expander('\\');
    CorpusTally tally("buildkit-shell/envVarTest (A and U lines)");
    int skipped_windows = 0;
    for (const std::string& line : split(text, '\n')) {
        if (line.starts_with('#') || trim_space(line).empty()) continue;
        std::vector<std::string> fields = split(line, '|');
        if (fields.size() != 3) {
            tally.fail(line, "malformed line");
            continue;
        }
        std::string platform(trim_space(fields[0]));
        std::string source(trim_space(fields[1]));
        std::string expected(trim_space(fields[2]));
        if (platform == "W") {
            ++skipped_windows;  // Windows-only: case-insensitive variable names
            continue;
        }
        Result<std::string> result = expander.process_word(source, env);
        if (expected == "error") {
            if (result)
                tally.fail(source, "expected an error, got " + testing::visible(*result));
            else
                tally.pass();
        } else if (!result) {
            tally.fail(source, "failed: " + result.error().message());
        } else if (*result != expected) {
            tally.fail(source, "got " + testing::visible(*result) + ", want " + testing::visible(expected));
        } else {
            tally.pass();
        }
    }
    EXPECT_EQ(skipped_windows, 2);
    tally.report();
}

TEST(ShellCorpus, WordsTestProcessWords) {
    std::string path = shell_corpus() + "/wordsTest";
    SKIP_WITHOUT(path);
    std::string text;
    ASSERT_TRUE(testing::read_text(path, text));
    std::vector<std::string> envs;
    ShellExpander expander('\\');
    CorpusTally tally("buildkit-shell/wordsTest");
    for (std::string line : split(text, '\n')) {
        if (line.starts_with('#') || line.empty()) continue;
        if (line.starts_with("ENV ")) {
            std::string_view definition = std::string_view(line).substr(3);
            while (definition.starts_with(' ')) definition.remove_prefix(1);
            envs.emplace_back(definition);  // cumulative; the last definition of a name wins
            continue;
        }
        std::vector<std::string> parts = split(line, '|');
        if (parts.size() != 2) {
            tally.fail(line, "malformed line");
            continue;
        }
        std::string input(trim_space(parts[0]));
        std::string_view right = parts[1];
        while (right.starts_with(' ')) right.remove_prefix(1);
        std::vector<std::string> expected = split(right, ',');
        Result<std::vector<std::string>> words = expander.process_words(input, env_from_list(envs));
        if (expected[0] == "error") {
            if (words)
                tally.fail(input, "expected an error");
            else
                tally.pass();
        } else if (!words) {
            tally.fail(input, "failed: " + words.error().message());
        } else if (*words != expected) {
            tally.fail(input, "got [" + join(*words, "|") + "], want [" + join(expected, "|") + "]");
        } else {
            tally.pass();
        }
    }
    tally.report();
}

TEST(ShellCorpus, ProcessWordWithMatchesVectors) {
    std::string path = shell_corpus() + "/derived/process-word-vectors.json";
    SKIP_WITHOUT(path);
    std::string text;
    ASSERT_TRUE(testing::read_text(path, text));
    nlohmann::json vectors = nlohmann::json::parse(text);
    ShellExpander expander('\\');
    CorpusTally tally("buildkit-shell/derived/process-word-vectors.json");
    for (const auto& vector : vectors) {
        std::string input = vector["input"].get<std::string>();
        std::vector<std::string> envs;
        for (const auto& [name, value] : vector["envs"].items()) envs.push_back(name + "=" + value.get<std::string>());
        Result<ShellExpansion> expansion = expander.expand(input, env_from_list(envs));
        if (vector["expectedErr"].get<bool>()) {
            if (expansion) {
                tally.fail(input, "expected an error, got " + testing::visible(expansion->result));
            } else if (vector.contains("error_contains") &&
                       expansion.error().message().find(vector["error_contains"].get<std::string>()) ==
                           std::string::npos) {
                tally.fail(input, "error " + expansion.error().message() + " lacks " +
                                      vector["error_contains"].get<std::string>());
            } else {
                tally.pass();
            }
            continue;
        }
        if (!expansion) {
            tally.fail(input, "failed: " + expansion.error().message());
            continue;
        }
        if (expansion->result != vector["expected"].get<std::string>()) {
            tally.fail(input, "got " + testing::visible(expansion->result));
            continue;
        }
        // As upstream, the variable names are compared on success only.
        auto names = [](const nlohmann::json& list) {
            std::set<std::string> set;
            for (const auto& name : list) set.insert(name.get<std::string>());
            return set;
        };
        if (vector["matches_checked"].get<bool>() &&
            (expansion->matched != names(vector["matches"]) || expansion->unmatched != names(vector["unmatched"]))) {
            tally.fail(input, "matched/unmatched names differ");
            continue;
        }
        tally.pass();
    }
    tally.report();
}

}  // namespace
}  // namespace kiln::dockerfile
