// Heredoc words ("<<EOF", "3<<-'EOF'") and the heredocs a RUN/COPY/ADD line opens.

#include <algorithm>

#include "common/strings.hpp"
#include "dockerfile-parser/parse_internal.hpp"
#include "dockerfile-parser/shell_expand.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

struct HeredocOperator {
    std::string_view fd_digits;
    bool chomp = false;
    std::string_view rest;
};

// Matches ^(\d*)<<(-?)([^<]*)$.
bool match_heredoc_operator(std::string_view word, HeredocOperator& match) {
    size_t pos = 0;
    while (pos < word.size() && word[pos] >= '0' && word[pos] <= '9') ++pos;
    match.fd_digits = word.substr(0, pos);
    if (word.substr(pos, 2) != "<<") return false;
    pos += 2;
    match.chomp = pos < word.size() && word[pos] == '-';
    if (match.chomp) ++pos;
    match.rest = word.substr(pos);
    return match.rest.find('<') == std::string_view::npos;
}

std::uint64_t parse_fd(std::string_view digits) {
    // Go's strconv.ParseUint: empty gives 0, overflow gives the largest value.
    std::uint64_t value = 0;
    for (char digit : digits) {
        auto digit_value = static_cast<std::uint64_t>(digit - '0');
        if (value > (UINT64_MAX - digit_value) / 10) return UINT64_MAX;
        value = value * 10 + digit_value;
    }
    return value;
}

size_t count_quotes(std::string_view text) {
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\'') +
                               std::count(text.begin(), text.end(), '"'));
}

}  // namespace

Result<std::optional<Heredoc>> parse_heredoc(std::string_view word) {
    HeredocOperator match;
    if (!match_heredoc_operator(word, match) || match.rest.empty()) return std::optional<Heredoc>();
    const EnvLookup no_env;
    // Lex the delimiter with and without quote removal: if they differ, part of it was quoted, and the body
    // must not be expanded.
    ShellExpander unquoting('\\', ShellLexOptions{.keep_unset = true});
    KILN_ASSIGN(std::vector<std::string> words, unquoting.process_words(match.rest, no_env));
    if (words.size() != 1) return std::optional<Heredoc>();
    ShellExpander quoting('\\', ShellLexOptions{.keep_quotes = true, .keep_unset = true});
    KILN_ASSIGN(std::vector<std::string> raw_words, quoting.process_words(match.rest, no_env));
    if (raw_words.size() != words.size())
        return fail(str_cat("internal lexing of heredoc produced inconsistent results: ", match.rest));
    Heredoc heredoc;
    heredoc.name = words[0];
    heredoc.fd = parse_fd(match.fd_digits);
    heredoc.chomp = match.chomp;
    heredoc.expand = count_quotes(words[0]) == count_quotes(raw_words[0]);
    return std::optional<Heredoc>(std::move(heredoc));
}

std::string chomp_heredoc_content(std::string_view content) {
    std::string out;
    out.reserve(content.size());
    bool line_start = true;
    for (char c : content) {
        if (line_start && c == '\t') continue;
        line_start = c == '\n';
        out += c;
    }
    return out;
}

namespace detail {

Result<std::vector<Heredoc>> heredocs_from_line(std::string_view line) {
    // The whole line is split into shell words with quotes and escapes kept; a line that does not lex (an
    // unbalanced quote) opens no heredoc.
    ShellExpander lexer('\\', ShellLexOptions{.keep_quotes = true, .keep_escapes = true, .keep_unset = true});
    Result<std::vector<std::string>> words = lexer.process_words(line, EnvLookup());
    std::vector<Heredoc> heredocs;
    if (!words) return heredocs;
    for (size_t i = 0; i < words->size(); ++i) {
        const std::string& word = (*words)[i];
        // "<<  EOF": an operator alone takes the next word as its delimiter.
        HeredocOperator match;
        if (i + 1 < words->size() && match_heredoc_operator(word, match) && match.rest.empty()) {
            KILN_ASSIGN(std::optional<Heredoc> joined, parse_heredoc(word + (*words)[i + 1]));
            if (joined) {
                heredocs.push_back(std::move(*joined));
                ++i;
                continue;
            }
        }
        KILN_ASSIGN(std::optional<Heredoc> heredoc, parse_heredoc(word));
        if (heredoc) heredocs.push_back(std::move(*heredoc));
    }
    return heredocs;
}

}  // namespace detail

}  // namespace kiln::dockerfile
