#pragma once
// The table of `kiln build`'s flags (flag_table.cpp): each flag kiln acts on, with how it is stored and its help
// line, and the Kaniko executor flags kiln accepts without acting on them or refuses. flags.cpp parses with it.

#include <string_view>
#include <vector>

#include "builder/cli/flag_values.hpp"

namespace kiln {

enum class FlagKind { value, boolean };

struct FlagSpec {
    std::string_view name;  // without the leading "--"
    char short_name;        // 0 when none
    FlagKind kind;
    Apply apply;
    std::string_view help;
};

// Kaniko flags kiln accepts without acting on them, because ignoring them cannot change the image.
struct IgnoredFlag {
    std::string_view name;
    FlagKind kind;
    std::string_view why;
};

// Kaniko flags whose meaning kiln does not provide yet; ignoring them would silently change the result.
struct RefusedFlag {
    std::string_view name;
    std::string_view why;
};

// Every flag `kiln build` acts on, in the order `--help` lists them.
const std::vector<FlagSpec>& flag_specs();
const std::vector<IgnoredFlag>& ignored_flags();
const std::vector<RefusedFlag>& refused_flags();

}  // namespace kiln
