#pragma once
// The --flags an instruction accepts, as buildkit's BFlags checks them: unknown and repeated flags are errors
// (only list flags such as --mount repeat), booleans take nothing, "true" or "false", strings need "=value".
// Internal to kiln_dockerfile.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::dockerfile::detail {

class InstructionFlags {
public:
    enum class Kind { boolean, string, list };

    // Declares a flag; call before parse().
    void define(std::string name, Kind kind);
    // Checks `flags` ("--name=value") against the declarations and records their values.
    Status parse(const std::vector<std::string>& flags);

    bool boolean(std::string_view name) const;
    std::string string(std::string_view name) const;
    std::vector<std::string> list(std::string_view name) const;

private:
    struct Flag {
        Kind kind;
        bool seen = false;
        std::string value;
        std::vector<std::string> values;
    };
    std::map<std::string, Flag, std::less<>> m_flags;
};

}  // namespace kiln::dockerfile::detail
