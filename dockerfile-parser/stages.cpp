#include "dockerfile-parser/stages.hpp"

#include <map>

#include "common/strings.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

const Stage* Dockerfile::find_stage(std::string_view name) const {
    std::string lower = to_lower(name);
    for (const Stage& stage : stages)
        if (!stage.name.empty() && stage.name == lower) return &stage;
    return nullptr;
}

namespace {

SourceLocation node_location(const Ast& ast, const Node& node) {
    return SourceLocation{.file = ast.file_name, .line = static_cast<size_t>(node.start_line)};
}

}  // namespace

Result<Dockerfile> build_stages(const Ast& ast) {
    Dockerfile dockerfile;
    dockerfile.file_name = ast.file_name;
    dockerfile.escape = ast.escape;
    dockerfile.directives = ast.directives;
    dockerfile.warnings = ast.warnings;
    for (const Directive& directive : ast.directives) {
        if (directive.name == "syntax") dockerfile.syntax = directive.value;
        if (directive.name == "check") dockerfile.check = directive.value;
    }

    std::map<std::string, size_t, std::less<>> stage_by_name;  // thousands of stages stay linear
    for (const Node& node : ast.children) {
        KILN_ASSIGN(Instruction instruction, parse_instruction(node, ast.file_name));
        if (auto* from = std::get_if<FromInstruction>(&instruction)) {
            Stage stage;
            stage.index = dockerfile.stages.size();
            stage.name = to_lower(from->stage_name);
            stage.location = from->location;
            if (!stage.name.empty()) {
                auto [earlier, inserted] = stage_by_name.emplace(stage.name, stage.index);
                if (!inserted)
                    return fail_at(node_location(ast, node),
                                   str_cat("duplicate stage name ", go_quote(stage.name), ", first defined on line ",
                                           dockerfile.stages[earlier->second].location.start_line));
            }
            stage.from = std::move(*from);
            dockerfile.stages.push_back(std::move(stage));
            continue;
        }
        if (dockerfile.stages.empty()) {
            if (auto* arg = std::get_if<ArgInstruction>(&instruction)) {
                dockerfile.meta_args.push_back(std::move(*arg));
                continue;
            }
            return fail_at(node_location(ast, node),
                           str_cat(instruction_name(instruction),
                                   " before the first FROM: only ARG may come before FROM (in: ", go_quote(node.original),
                                   ")"));
        }
        dockerfile.stages.back().instructions.push_back(std::move(instruction));
    }
    if (dockerfile.stages.empty()) return fail(str_cat(ast.file_name, ": no FROM: the Dockerfile has no stage to build"));
    return dockerfile;
}

Result<Dockerfile> parse_dockerfile(std::string_view text, std::string file_name) {
    KILN_ASSIGN(Ast ast, parse_ast(text, file_name));
    return build_stages(ast);
}

}  // namespace kiln::dockerfile
