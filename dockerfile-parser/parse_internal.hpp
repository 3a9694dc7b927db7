#pragma once
// Pieces shared by the AST parser's files. Internal to kiln_dockerfile.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "dockerfile-parser/ast.hpp"

namespace kiln::dockerfile::detail {

// Recognizes "# key = value" parser directives in the leading comment lines; the first other line ends them.
class DirectiveParser {
public:
    // Examines one left-trimmed line. A repeated directive or a bad escape value is an error.
    Status examine(std::string_view line, int line_number);

    char escape() const { return m_escape; }
    const std::vector<Directive>& directives() const { return m_directives; }

private:
    bool m_done = false;
    char m_escape = '\\';
    std::vector<Directive> m_directives;
};

// The instruction on one logical line: keyword, flags and arguments in the form its instruction takes.
// Errors carry only the message; the caller adds the location.
Result<Node> node_from_line(std::string_view line, char escape, int depth = 0);

// The heredocs a RUN/COPY/ADD line opens, in order (bodies not read yet).
Result<std::vector<Heredoc>> heredocs_from_line(std::string_view line);

// RUN, COPY and ADD in shell form (also as an ONBUILD trigger) may open heredocs.
bool can_contain_heredoc(const Node& node);

// Go's strings.ToLower for keywords: ASCII, plus the two non-ASCII letters that lower-case into ASCII.
std::string lower_keyword(std::string_view keyword);

// Go's strings.Cut-free whitespace split on runs of [ \t\v\f\r], as buildkit's reWhitespace.
std::vector<std::string> split_on_blanks(std::string_view text, size_t max_parts = 0);
bool is_blank(char c);

}  // namespace kiln::dockerfile::detail
