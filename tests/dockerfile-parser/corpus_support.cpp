#include "corpus_support.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "dockerfile-parser/ast.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile::testing {

namespace fs = std::filesystem;

std::string corpora_dir() { return KILN_SOURCE_DIR "/../shared/corpora"; }

bool read_text(const std::string& path, std::string& text) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
    return true;
}

std::vector<std::string> files_below(const std::string& dir, const std::string& suffix) {
    std::vector<std::string> files;
    std::error_code error;
    if (!fs::is_directory(dir, error)) return files;
    for (const auto& entry : fs::recursive_directory_iterator(dir, error)) {
        if (!entry.is_regular_file()) continue;
        std::string relative = fs::relative(entry.path(), dir).string();
        if (relative.ends_with(suffix)) files.push_back(relative);
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::string> subdirectories(const std::string& dir) {
    std::vector<std::string> dirs;
    std::error_code error;
    if (!fs::is_directory(dir, error)) return dirs;
    for (const auto& entry : fs::directory_iterator(dir, error))
        if (entry.is_directory()) dirs.push_back(entry.path().filename().string());
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

void CorpusTally::fail(const std::string& case_name, const std::string& why) {
    ++m_total;
    m_failures.push_back(case_name + ": " + why);
}

void CorpusTally::report() const {
    std::cout << "[corpus] " << m_corpus << ": passed " << (m_total - failures()) << " of " << m_total << "\n";
    for (size_t i = 0; i < m_failures.size() && i < 8; ++i) std::cout << "  FAIL " << m_failures[i] << "\n";
    EXPECT_GT(m_total, 0) << m_corpus << ": no cases found";
    EXPECT_EQ(failures(), 0) << m_corpus << ": " << failures() << " of " << m_total << " cases failed";
}

std::string visible(const std::string& text, size_t limit) {
    std::string quoted = go_quote(text);
    if (quoted.size() > limit) quoted = quoted.substr(0, limit) + "…";
    return quoted;
}

std::string compare_detail(const nlohmann::json& entry, const std::string& text) {
    Result<Ast> ast = parse_ast(text, entry.value("file", "Dockerfile"));
    bool expect_ok = entry.value("ok", true);
    if (!expect_ok) {
        if (ast) return "parsed, but upstream fails with: " + entry.value("error", std::string());
        std::string expected = entry.value("error", std::string());
        if (ast.error().message().find(expected) == std::string::npos)
            return "error " + visible(ast.error().message()) + " does not contain " + visible(expected);
        return "";
    }
    if (!ast) return "failed: " + ast.error().message();
    std::string escape(1, ast->escape);
    if (entry.contains("escape_token") && entry["escape_token"].get<std::string>() != escape)
        return "escape token " + escape;
    const auto& children = entry["children"];
    if (children.size() != ast->children.size())
        return "instruction count " + std::to_string(ast->children.size()) + " != " + std::to_string(children.size());
    for (size_t i = 0; i < children.size(); ++i) {
        const auto& expected = children[i];
        const Node& node = ast->children[i];
        std::string where = "instruction " + std::to_string(i + 1) + ": ";
        if (dump(node) != expected["dump"].get<std::string>())
            return where + "dump " + visible(dump(node)) + " != " + visible(expected["dump"].get<std::string>());
        if (node.start_line != expected["start_line"].get<int>() || node.end_line != expected["end_line"].get<int>())
            return where + "lines " + std::to_string(node.start_line) + "-" + std::to_string(node.end_line) +
                   " != " + std::to_string(expected["start_line"].get<int>()) + "-" +
                   std::to_string(expected["end_line"].get<int>());
        nlohmann::json heredocs = expected.value("heredocs", nlohmann::json::array());
        if (heredocs.size() != node.heredocs.size())
            return where + "heredoc count " + std::to_string(node.heredocs.size());
        for (size_t h = 0; h < heredocs.size(); ++h) {
            const Heredoc& heredoc = node.heredocs[h];
            const auto& want = heredocs[h];
            if (heredoc.name != want["name"].get<std::string>() || heredoc.fd != want["fd"].get<std::uint64_t>() ||
                heredoc.expand != want["expand"].get<bool>() || heredoc.chomp != want["chomp"].get<bool>() ||
                heredoc.content != want["content"].get<std::string>())
                return where + "heredoc " + visible(heredoc.name) + " differs (content " + visible(heredoc.content) +
                       ")";
        }
    }
    std::vector<std::string> expected_warnings;
    for (const auto& warning : entry.value("warnings", nlohmann::json::array()))
        expected_warnings.push_back(warning.get<std::string>());
    std::vector<std::string> warnings;
    for (const ParseWarning& warning : ast->warnings) warnings.push_back(warning.message);
    if (warnings != expected_warnings)
        return "warnings: got " + std::to_string(warnings.size()) + ", want " + std::to_string(expected_warnings.size()) +
               (warnings.empty() ? "" : " (first " + visible(warnings[0]) + ")");
    return "";
}

}  // namespace kiln::dockerfile::testing
