#pragma once
// COPY/ADD --chmod: an octal mode ("0755", at most 07777) or, as recent BuildKit also accepts, a symbolic
// mode the way chmod(1) reads one ("u+x", "go-w,a+r", "u=rwX"), which changes each file's own mode.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln {

class ModeChange {
public:
    // Parses the value of --chmod; the error names the value and what is accepted.
    static Result<ModeChange> parse(std::string_view text);

    // The permission bits (07777) that an entry gets, given its st_mode (type bits included: "X" adds execute
    // permission to directories, and to files some class may already execute).
    mode_t apply(mode_t st_mode) const;

    // True for an octal mode, which is the same for every file.
    bool is_octal() const { return m_actions.empty(); }

private:
    // One "who op perms" action of a symbolic mode: "g+w", "o=", "u=g".
    struct Action {
        mode_t who = 0;              // bits it may touch: 04700 (u), 02070 (g), 01007 (o), or a union
        char op = '+';               // '+', '-' or '='
        mode_t bits = 0;             // r w x s t for every class, before masking with `who`
        bool conditional_x = false;  // X
        char copy_from = 0;          // 'u', 'g' or 'o' in "g=u"; 0 otherwise
    };

    ModeChange() = default;
    mode_t m_octal = 0;
    std::vector<Action> m_actions;  // empty for an octal mode
};

}  // namespace kiln
