#pragma once
// Stage 3 of parsing: typed instructions grouped into build stages. This is the parser's entry point.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "dockerfile-parser/ast.hpp"
#include "dockerfile-parser/instructions.hpp"

namespace kiln::dockerfile {

// One build stage: a FROM and the instructions up to the next FROM.
struct Stage {
    size_t index = 0;
    std::string name;  // lower-cased stage name from `FROM … AS name`; empty when unnamed
    FromInstruction from;
    Location location;  // of the FROM
    std::vector<Instruction> instructions;  // everything after the FROM, up to the next FROM
};

// The parser's result.
struct Dockerfile {
    std::string file_name;
    char escape = '\\';
    std::vector<Directive> directives;    // in file order
    std::optional<std::string> syntax;    // "# syntax=…", noted only: kiln has one frontend
    std::optional<std::string> check;     // "# check=…"
    std::vector<ParseWarning> warnings;
    std::vector<ArgInstruction> meta_args;  // ARGs before the first FROM: in scope for every FROM line
    std::vector<Stage> stages;

    // The stage named `name` (compared case-insensitively), or nullptr.
    const Stage* find_stage(std::string_view name) const;
};

// Parses a Dockerfile: AST, typed instructions, stages. Fails with "<file>:<line>: …" on the first error;
// a file without instructions or without FROM, an instruction other than ARG before the first FROM, and a
// repeated stage name are errors.
Result<Dockerfile> parse_dockerfile(std::string_view text, std::string file_name = "Dockerfile");

// As parse_dockerfile, from an AST already parsed.
Result<Dockerfile> build_stages(const Ast& ast);

}  // namespace kiln::dockerfile
