// Parser directives: "# syntax=…", "# escape=`", "# check=…" at the top of a Dockerfile.

#include "common/strings.hpp"
#include "dockerfile-parser/parse_internal.hpp"

namespace kiln::dockerfile::detail {

namespace {

// Go's regexp \s: the ASCII white space of RE2 (no \v).
bool is_regex_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }
bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_alnum(char c) { return is_ascii_alpha(c) || (c >= '0' && c <= '9'); }

struct DirectiveMatch {
    std::string_view key;
    std::string_view value;
};

// Matches ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ with the regexp's leftmost-first semantics.
bool match_directive(std::string_view line, DirectiveMatch& match) {
    size_t pos = 0;
    if (pos >= line.size() || line[pos] != '#') return false;
    ++pos;
    while (pos < line.size() && is_regex_space(line[pos])) ++pos;
    size_t key_start = pos;
    if (pos >= line.size() || !is_ascii_alpha(line[pos])) return false;
    while (pos < line.size() && is_ascii_alnum(line[pos])) ++pos;
    match.key = line.substr(key_start, pos - key_start);
    while (pos < line.size() && is_regex_space(line[pos])) ++pos;
    if (pos >= line.size() || line[pos] != '=') return false;
    ++pos;
    std::string_view rest = line.substr(pos);
    if (rest.empty()) return false;
    // The value is the rest without surrounding white space; if the rest is all white space, the lazy group
    // still takes one character: the last one.
    size_t begin = 0;
    while (begin < rest.size() && is_regex_space(rest[begin])) ++begin;
    if (begin == rest.size()) {
        match.value = rest.substr(rest.size() - 1);
        return true;
    }
    size_t end = rest.size();
    while (end > begin && is_regex_space(rest[end - 1])) --end;
    match.value = rest.substr(begin, end - begin);
    return true;
}

}  // namespace

Status DirectiveParser::examine(std::string_view line, int line_number) {
    if (m_done) return {};
    DirectiveMatch match;
    if (!match_directive(line, match)) {
        m_done = true;
        return {};
    }
    std::string key = to_lower(match.key);
    if (key != "syntax" && key != "escape" && key != "check") {
        m_done = true;
        return {};
    }
    for (const Directive& seen : m_directives)
        if (seen.name == key) return fail(str_cat("only one ", key, " parser directive can be used"));
    if (key == "escape") {
        if (match.value != "`" && match.value != "\\")
            return fail(str_cat("invalid escape token '", match.value, "' does not match ` or \\"));
        m_escape = match.value[0];
    }
    m_directives.push_back({key, std::string(match.value), line_number});
    return {};
}

}  // namespace kiln::dockerfile::detail
