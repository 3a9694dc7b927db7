// buildkit's S-expression dump, the form the parser corpora are written in.

#include "dockerfile-parser/ast.hpp"
#include "dockerfile-parser/parse_internal.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

std::string dump(const Node& node) {
    std::string out = detail::lower_keyword(node.keyword);
    if (!node.flags.empty()) {
        out += " [";
        for (size_t i = 0; i < node.flags.size(); ++i) {
            if (i) out += ' ';
            out += go_quote(node.flags[i]);
        }
        out += ']';
    }
    for (const std::string& arg : node.args) {
        out += ' ';
        out += go_quote(arg);
    }
    // ONBUILD's trigger is printed as a nested instruction.
    for (const Node& child : node.children) {
        out += " (";
        out += dump(child);
        out += ')';
    }
    return std::string(trim_space(out));
}

std::string dump(const Ast& ast) {
    std::string out;
    for (const Node& child : ast.children) {
        out += '(';
        out += dump(child);
        out += ")\n";
    }
    return out;
}

}  // namespace kiln::dockerfile
