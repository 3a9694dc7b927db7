#pragma once
// Stage 1 of parsing: Dockerfile text → a located AST, exactly as buildkit's parser builds it (directives,
// continuations, comments, flags, JSON and shell argument forms, heredocs). Nothing is expanded here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::dockerfile {

// A here-document attached to a RUN/COPY/ADD (or the same under ONBUILD).
struct Heredoc {
    std::string name;       // the delimiter after quote removal: "EOF" for <<'EOF'
    std::uint64_t fd = 0;   // 3 for 3<<EOF, else 0
    bool expand = true;     // false when any part of the delimiter was quoted
    bool chomp = false;     // <<- : leading tabs are removed later (chomp_heredoc_content)
    std::string content;    // raw body, each line with its "\n"; tabs not yet removed
};

// One instruction. `args` is buildkit's "next" list; ONBUILD keeps its trigger in `children`.
struct Node {
    std::string keyword;             // as written: "RUN", "run", "Foo"
    std::vector<std::string> flags;  // leading --flags, quotes removed: "--mount=type=cache,target=/x"
    std::vector<std::string> args;
    std::vector<Node> children;      // ONBUILD: its trigger instruction (at most one)
    bool json_form = false;          // arguments were a JSON array of strings
    std::string original;            // the logical line, continuations joined, without heredoc bodies
    int start_line = 0;              // 1-based, inclusive; continuation and heredoc lines belong here
    int end_line = 0;
    std::vector<Heredoc> heredocs;
    std::vector<std::string> comments;  // the comment lines right above the instruction

    // The keyword in lower case, as the instruction tables and the dump use it.
    std::string command() const;
};

// A parser directive from the leading comment lines: "syntax", "escape" or "check" (lower case).
struct Directive {
    std::string name;
    std::string value;
    int line = 0;
};

// A problem that does not stop the parse.
struct ParseWarning {
    std::string message;  // "Empty continuation line found in: RUN a b"
    int line = 0;
};

// A parsed Dockerfile: its instructions in order, plus what the directives said.
struct Ast {
    std::string file_name;
    std::vector<Node> children;
    int start_line = 0;  // first and last line covered by any instruction
    int end_line = 0;
    char escape = '\\';
    std::vector<Directive> directives;
    std::vector<ParseWarning> warnings;
};

// Parses a whole Dockerfile. Errors read "<file>:<line>: <what> (in: <instruction text>)". Warnings are returned
// in Ast::warnings for the caller to report (and logged at debug level).
Result<Ast> parse_ast(std::string_view text, std::string_view file_name = "Dockerfile");

// buildkit's S-expression dump of one instruction: `run ["--mount=…"] "a" "b"`, values Go-quoted.
std::string dump(const Node& node);
// The dump of a whole file: one "(instruction)" line per instruction, each ending in "\n".
std::string dump(const Ast& ast);

// Parses one heredoc word such as "<<-'EOF'" (content left empty); nullopt when `word` is not a heredoc.
// An unbalanced quote in the delimiter is an error.
Result<std::optional<Heredoc>> parse_heredoc(std::string_view word);

// Removes leading tabs from every line, which is what <<- asks for.
std::string chomp_heredoc_content(std::string_view content);

}  // namespace kiln::dockerfile
