#include "builder/sources/file_mode.hpp"

#include <sys/stat.h>

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr mode_t k_all = 07777;

// BuildKit's wording, so that scripts matching on it keep working.
Error not_octal(std::string_view text) {
    return Error(
        str_cat("invalid chmod parameter: '", text, "'. it should be octal string and between 0 and 07777"));
}

Error not_symbolic(std::string_view text) {
    return Error(str_cat("invalid --chmod \"", text,
                         "\": use an octal mode such as 0755 or a symbolic one such as u+x,go-w"));
}

mode_t who_bits(char who) {
    switch (who) {
        case 'u':
            return S_ISUID | S_IRWXU;
        case 'g':
            return S_ISGID | S_IRWXG;
        case 'o':
            return S_ISVTX | S_IRWXO;
        default:
            return k_all;
    }
}

mode_t perm_bits(char perm) {
    switch (perm) {
        case 'r':
            return 0444;
        case 'w':
            return 0222;
        case 'x':
            return 0111;
        case 's':
            return S_ISUID | S_ISGID;
        case 't':
            return S_ISVTX;
        default:
            return 0;
    }
}

}  // namespace

Result<ModeChange> ModeChange::parse(std::string_view text) {
    ModeChange change;
    if (!text.empty() && text[0] >= '0' && text[0] <= '9') {
        if (text.size() > 11) return fail(not_octal(text));
        for (char c : text) {
            if (c < '0' || c > '7') return fail(not_octal(text));
            change.m_octal = change.m_octal * 8 + static_cast<mode_t>(c - '0');
        }
        if (change.m_octal > k_all) return fail(not_octal(text));
        return change;
    }
    if (text.empty()) return fail(not_symbolic(text));
    for (const std::string& clause : split(text, ',')) {
        size_t pos = 0;
        mode_t who = 0;
        for (; pos < clause.size() && std::string_view("ugoa").find(clause[pos]) != std::string_view::npos;
             ++pos)
            who |= who_bits(clause[pos]);
        if (who == 0) who = k_all;  // no class named: all of them (umask 0, as BuildKit parses)
        if (pos == clause.size()) return fail(not_symbolic(text));
        while (pos < clause.size()) {
            Action action{.who = who, .op = clause[pos++]};
            if (action.op != '+' && action.op != '-' && action.op != '=') return fail(not_symbolic(text));
            if (pos < clause.size() && std::string_view("ugo").find(clause[pos]) != std::string_view::npos) {
                action.copy_from = clause[pos++];
            } else {
                for (; pos < clause.size() &&
                       std::string_view("rwxXst").find(clause[pos]) != std::string_view::npos;
                     ++pos) {
                    if (clause[pos] == 'X') action.conditional_x = true;
                    action.bits |= perm_bits(clause[pos]);
                }
            }
            change.m_actions.push_back(action);
        }
    }
    return change;
}

mode_t ModeChange::apply(mode_t st_mode) const {
    if (is_octal()) return m_octal;
    mode_t mode = st_mode & k_all;
    for (const Action& action : m_actions) {
        mode_t bits = action.bits;
        if (action.conditional_x && (S_ISDIR(st_mode) || (mode & 0111) != 0)) bits |= 0111;
        if (action.copy_from != 0) {
            int shift = action.copy_from == 'u' ? 6 : action.copy_from == 'g' ? 3 : 0;
            mode_t permissions = (mode >> shift) & 07;
            bits = permissions << 6 | permissions << 3 | permissions;
        }
        bits &= action.who;
        if (action.op == '+') mode |= bits;
        if (action.op == '-') mode &= ~bits;
        if (action.op == '=') mode = (mode & ~action.who) | bits;
    }
    return mode;
}

}  // namespace kiln
