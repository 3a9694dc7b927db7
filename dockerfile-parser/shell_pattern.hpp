#pragma once
// The shell patterns of ${VAR#pat}, ${VAR%pat} and ${VAR/pat/repl}: `*`, `?`, `\` escapes and literals, matched
// with the leftmost-first semantics of the Go regular expression buildkit translates them to. A Pike VM keeps
// every match linear in the value's length, whatever the pattern. Internal to kiln_dockerfile.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::dockerfile {

enum class StarMatch { shortest, longest };
enum class PatternAnchor { start, anywhere };

class ShellPattern {
public:
    // Compiles `pattern` (escapes still in it); an escape of anything but * ? \ (or } / which are dropped) fails.
    static Result<ShellPattern> compile(std::string_view pattern, StarMatch star, PatternAnchor anchor);

    struct Span {
        size_t begin;
        size_t end;
    };
    // The leftmost-first match in `value` at or after byte `from`.
    Result<std::optional<Span>> find(std::string_view value, size_t from = 0) const;

    // Go's Regexp.ReplaceAllString: `replacement` may use $0 / ${0} for the match and $$ for a dollar. A result
    // past `max_size` bytes is an error (an empty pattern puts the replacement between every character, and
    // nested substitutions multiply that).
    Result<std::string> replace_all(std::string_view value, std::string_view replacement, size_t max_size) const;

    struct Instruction {
        enum class Op { literal, any, split, jump, match } op;
        char32_t rune = 0;
        size_t first = 0;   // split: preferred branch; jump: target
        size_t second = 0;  // split: other branch
    };

private:
    std::vector<Instruction> m_program;
    PatternAnchor m_anchor = PatternAnchor::anywhere;
};

// ${VAR#pat} / ${VAR##pat}: removes the shortest (longest) prefix matching `pattern`.
Result<std::string> trim_pattern_prefix(std::string_view pattern, std::string_view value, StarMatch star);
// ${VAR%pat} / ${VAR%%pat}: removes the shortest (longest) suffix matching `pattern`.
Result<std::string> trim_pattern_suffix(std::string_view pattern, std::string_view value, StarMatch star);

}  // namespace kiln::dockerfile
