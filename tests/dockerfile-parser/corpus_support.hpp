#pragma once
// Shared helpers for the corpus-driven tests: where the corpora are, reading them, and a tally that prints
// "passed X of Y" with the first failures.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// Skips the current test when a corpus file or directory is absent.
#define SKIP_WITHOUT(path) \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "corpus missing: " << (path)

namespace kiln::dockerfile::testing {

// ../shared/corpora beside the source tree.
std::string corpora_dir();

// The file's bytes; empty optional-like: `ok` false when it cannot be read.
bool read_text(const std::string& path, std::string& text);

// Regular files below `dir` whose name ends with `suffix`, sorted, as paths relative to `dir`.
std::vector<std::string> files_below(const std::string& dir, const std::string& suffix);
// Immediate subdirectories of `dir`, sorted.
std::vector<std::string> subdirectories(const std::string& dir);

// Counts cases of one corpus and remembers the first failures for the report.
class CorpusTally {
public:
    explicit CorpusTally(std::string corpus) : m_corpus(std::move(corpus)) {}
    void pass() { ++m_total; }
    void fail(const std::string& case_name, const std::string& why);
    // Prints the summary and fails the current test if any case failed.
    void report() const;
    int failures() const { return static_cast<int>(m_failures.size()); }
    int total() const { return m_total; }

private:
    std::string m_corpus;
    int m_total = 0;
    std::vector<std::string> m_failures;
};

// Compares one detail.json entry ({file, ok, error?, warnings?, escape_token, children}) with kiln's parse of
// `text`; returns an empty string when everything matches, else what differs.
std::string compare_detail(const nlohmann::json& entry, const std::string& text);

// Shows a string with its control characters visible, for failure messages.
std::string visible(const std::string& text, size_t limit = 300);

}  // namespace kiln::dockerfile::testing
