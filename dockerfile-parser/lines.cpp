// The line loop: physical lines → logical lines (continuations, comments, directives) → nodes, and the
// heredoc bodies that follow a line that opens them.

#include "common/log.hpp"
#include "common/strings.hpp"
#include "dockerfile-parser/parse_internal.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

// buildkit reads lines with a 64 KiB scanner buffer: a line that does not fit with its newline is an error.
constexpr size_t k_max_line_size = 65535;
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";

// buildkit's form: "Dockerfile:3: <message> (in: \"<the line>\")".
Error located(std::string_view file, int line, std::string_view message, std::string_view instruction) {
    std::string text(message);
    if (!instruction.empty()) {
        constexpr size_t k_shown = 200;
        std::string_view shown = instruction.substr(0, k_shown);
        text += str_cat(" (in: ", go_quote(shown), instruction.size() > k_shown ? "…" : "", ")");
    }
    return Error(std::move(text)).at(SourceLocation{.file = std::string(file), .line = static_cast<size_t>(line)});
}

// Physical lines as Go's bufio.ScanLines yields them: split on '\n', one trailing '\r' dropped.
class LineReader {
public:
    explicit LineReader(std::string_view text) : m_text(text) {}

    bool at_end() const { return m_pos >= m_text.size(); }
    int line_number() const { return m_line; }

    Result<std::string_view> next() {
        size_t newline = m_text.find('\n', m_pos);
        size_t end = newline == std::string_view::npos ? m_text.size() : newline;
        std::string_view line = m_text.substr(m_pos, end - m_pos);
        m_pos = newline == std::string_view::npos ? m_text.size() : newline + 1;
        ++m_line;
        if (line.size() > k_max_line_size)
            return fail(str_cat("dockerfile line greater than max allowed size of ", k_max_line_size));
        // A NUL would end the text at the C boundary (a RUN's shell gets a C string), so what runs would not be
        // what the Dockerfile shows. buildkit passes it on; kiln refuses it, wherever it is.
        if (size_t nul = line.find('\0'); nul != std::string_view::npos)
            return fail(str_cat("NUL byte at column ", nul + 1, ": a Dockerfile is text"));
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return line;
    }

private:
    std::string_view m_text;
    size_t m_pos = 0;
    int m_line = 0;
};

std::string_view trim_newlines(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    return line;
}

bool is_comment(std::string_view line) {
    std::string_view trimmed = trim_left_space(trim_newlines(line));
    return !trimmed.empty() && trimmed[0] == '#';
}

bool is_empty_continuation(std::string_view line) { return trim_left_space(trim_newlines(line)).empty(); }

// Removes a line-continuation escape (with blanks after it) unless the escape is itself escaped.
bool trim_continuation(std::string_view& line, char escape) {
    size_t end = line.size();
    while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
    if (end == 0 || line[end - 1] != escape) return false;
    if (end >= 2 && line[end - 2] == escape) return false;
    line = line.substr(0, end - 1);
    return true;
}

}  // namespace

Result<Ast> parse_ast(std::string_view text, std::string_view file_name) {
    Ast ast;
    ast.file_name = std::string(file_name);
    detail::DirectiveParser directives;
    LineReader reader(text);
    std::vector<std::string> comments;

    // Reads a line and applies the per-line rules: newline trimming, optional left trim, directive detection,
    // and a line that is a comment becoming empty.
    auto process_line = [&](std::string_view raw, bool strip_left) -> Result<std::string_view> {
        std::string_view token = trim_newlines(raw);
        if (strip_left) token = trim_left_space(token);
        Status directive = directives.examine(token, reader.line_number());
        if (!directive) return fail(located(file_name, reader.line_number(), directive.error().message(), ""));
        if (!token.empty() && token[0] == '#') return std::string_view();
        return token;
    };
    auto read_line = [&]() -> Result<std::string_view> {
        Result<std::string_view> line = reader.next();
        if (!line) return fail(located(file_name, reader.line_number(), line.error().message(), ""));
        return line;
    };

    bool first_line = true;
    while (!reader.at_end()) {
        KILN_ASSIGN(std::string_view raw, read_line());
        if (first_line && raw.starts_with(k_utf8_bom)) raw.remove_prefix(k_utf8_bom.size());
        first_line = false;
        if (is_comment(raw)) {
            std::string_view comment = trim_space(trim_left_space(raw).substr(1));
            if (comment.empty())
                comments.clear();
            else
                comments.emplace_back(comment);
        }
        KILN_ASSIGN(std::string_view processed, process_line(raw, true));
        int start_line = reader.line_number();
        bool continued = trim_continuation(processed, directives.escape());
        if (!continued && processed.empty()) continue;

        std::string line(processed);
        bool empty_continuation = false;
        while (continued && !reader.at_end()) {
            KILN_ASSIGN(std::string_view next_raw, read_line());
            KILN_ASSIGN(std::string_view next, process_line(next_raw, false));
            if (is_comment(next_raw)) continue;
            if (is_empty_continuation(next)) {
                empty_continuation = true;
                continue;
            }
            continued = trim_continuation(next, directives.escape());
            line += next;
        }
        if (empty_continuation) {
            ParseWarning warning{str_cat("Empty continuation line found in: ", line), reader.line_number()};
            // Returned to the caller, who reports it; logged here only for tracing.
            log_debug(format_location({.file = std::string(file_name), .line = static_cast<size_t>(warning.line), .text = {}}), ": ",
                      warning.message);
            ast.warnings.push_back(std::move(warning));
        }

        Result<Node> parsed = detail::node_from_line(line, directives.escape());
        if (!parsed) return fail(located(file_name, start_line, parsed.error().message(), line));
        Node node = std::move(*parsed);

        if (detail::can_contain_heredoc(node) && line.find("<<") != std::string::npos) {
            Result<std::vector<Heredoc>> heredocs = detail::heredocs_from_line(line);
            if (!heredocs) return fail(located(file_name, start_line, heredocs.error().message(), line));
            for (Heredoc& heredoc : *heredocs) {
                bool terminated = false;
                while (!reader.at_end()) {
                    KILN_ASSIGN(std::string_view body_line, read_line());
                    std::string_view candidate = trim_newlines(body_line);
                    if (heredoc.chomp) {
                        while (!candidate.empty() && candidate[0] == '\t') candidate.remove_prefix(1);
                    }
                    if (candidate == heredoc.name) {
                        terminated = true;
                        break;
                    }
                    heredoc.content += body_line;
                    heredoc.content += '\n';
                }
                if (!terminated)
                    return fail(located(file_name, start_line, str_cat("unterminated heredoc ", heredoc.name), line));
                node.heredocs.push_back(std::move(heredoc));
            }
        }

        node.start_line = start_line;
        node.end_line = reader.line_number();
        node.comments = std::move(comments);
        comments.clear();
        if (ast.children.empty()) ast.start_line = node.start_line;
        ast.end_line = node.end_line;
        ast.children.push_back(std::move(node));
    }

    if (ast.children.empty()) return fail(str_cat(file_name, ": file with no instructions"));
    ast.escape = directives.escape();
    ast.directives = directives.directives();
    return ast;
}

}  // namespace kiln::dockerfile
