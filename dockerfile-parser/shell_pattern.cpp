#include "dockerfile-parser/shell_pattern.hpp"

#include <algorithm>

#include "common/strings.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

using Op = ShellPattern::Instruction::Op;

// Bounds the work of one match so a hostile pattern and value cannot stall a build.
constexpr size_t k_max_steps = 200'000'000;

std::string encode_all(const std::u32string& runes) {
    std::string text;
    for (char32_t rune : runes) append_rune(text, rune);
    return text;
}

std::string rune_text(char32_t rune) {
    std::string text;
    append_rune(text, rune);
    return text;
}

// Reverses a pattern while keeping each escape before the character it escapes: a\*c becomes c\*a.
std::u32string reverse_pattern(const std::u32string& pattern) {
    std::u32string out(pattern.size(), U'\0');
    if (pattern.empty()) return out;
    size_t last = pattern.size() - 1;
    for (size_t i = 0; i <= last;) {
        size_t out_index = last - i;
        if (pattern[i] == U'\\' && i != last) {
            out[out_index - 1] = pattern[i];
            out[out_index] = pattern[i + 1];
            i += 2;
        } else {
            out[out_index] = pattern[i];
            ++i;
        }
    }
    return out;
}

// Go's Regexp.Expand for a regexp without groups: only group 0 (the whole match) exists.
void expand_template(std::string& out, std::string_view templ, std::string_view match) {
    while (!templ.empty()) {
        size_t dollar = templ.find('$');
        if (dollar == std::string_view::npos) break;
        out.append(templ.substr(0, dollar));
        templ.remove_prefix(dollar + 1);
        if (!templ.empty() && templ[0] == '$') {
            out += '$';
            templ.remove_prefix(1);
            continue;
        }
        std::string_view rest = templ;
        bool brace = false;
        if (!rest.empty() && rest[0] == '{') {
            brace = true;
            rest.remove_prefix(1);
        }
        size_t length = 0;
        while (length < rest.size()) {
            DecodedRune decoded = decode_rune(rest, length);
            if (!is_letter(decoded.rune) && !is_digit(decoded.rune) && decoded.rune != '_') break;
            length += decoded.width;
        }
        bool ok = length > 0;
        std::string_view name = rest.substr(0, length);
        size_t consumed = length;
        if (ok && brace) {
            if (length >= rest.size() || rest[length] != '}')
                ok = false;
            else
                ++consumed;
        }
        if (!ok) {
            out += '$';  // malformed: the dollar is literal
            continue;
        }
        templ = rest.substr(consumed);
        if (name == "0") out.append(match);
        // Any other number or name refers to a group that does not exist: it expands to nothing.
    }
    out.append(templ);
}

}  // namespace

Result<ShellPattern> ShellPattern::compile(std::string_view pattern, StarMatch star, PatternAnchor anchor) {
    ShellPattern compiled;
    compiled.m_anchor = anchor;
    std::vector<Instruction>& program = compiled.m_program;
    std::u32string runes = decode_runes(pattern);
    for (size_t i = 0; i < runes.size();) {
        char32_t rune = runes[i++];
        if (rune == U'*') {
            // L: split(any, next) for the longest match, split(next, any) for the shortest.
            size_t split_at = program.size();
            program.push_back({Op::split});
            program.push_back({Op::any});
            program.push_back({Op::jump, 0, split_at});
            size_t body = split_at + 1;
            size_t after = program.size();
            bool longest = star == StarMatch::longest;
            program[split_at].first = longest ? body : after;
            program[split_at].second = longest ? after : body;
            continue;
        }
        if (rune == U'?') {
            program.push_back({Op::any});
            continue;
        }
        if (rune == U'\\') {
            // `\}` and `\/` were only needed inside ${}: the escape is not part of the pattern.
            if (i < runes.size() && (runes[i] == U'}' || runes[i] == U'/')) continue;
            if (i >= runes.size()) return fail("invalid escape '\\' at the end of the pattern");
            rune = runes[i++];
            if (rune != U'*' && rune != U'?' && rune != U'\\')
                return fail(str_cat("invalid escape '\\", rune_text(rune), "'"));
        }
        program.push_back({Op::literal, rune});
    }
    program.push_back({Op::match});
    return compiled;
}

Result<std::optional<ShellPattern::Span>> ShellPattern::find(std::string_view value, size_t from) const {
    struct Thread {
        size_t pc;
        size_t start;
    };
    const size_t program_size = m_program.size();
    std::vector<Thread> current, next;
    std::vector<size_t> seen(program_size, SIZE_MAX);  // generation in which a pc was added
    size_t generation = 0;
    size_t steps = 0;
    std::optional<Span> best;

    // Adds a thread and follows its jumps and splits, in priority order, without recursion.
    std::vector<size_t> pending;
    auto add_thread = [&](std::vector<Thread>& list, size_t pc, size_t start) {
        pending.clear();
        pending.push_back(pc);
        while (!pending.empty()) {
            size_t at = pending.back();
            pending.pop_back();
            if (seen[at] == generation) continue;
            seen[at] = generation;
            const Instruction& instruction = m_program[at];
            if (instruction.op == Op::jump) {
                pending.push_back(instruction.first);
            } else if (instruction.op == Op::split) {
                pending.push_back(instruction.second);
                pending.push_back(instruction.first);
            } else {
                list.push_back({at, start});
            }
        }
    };

    size_t pos = from;
    ++generation;
    add_thread(current, 0, pos);
    while (true) {
        // Consume the rune at `pos` (if any) and build the next generation.
        DecodedRune decoded{0, 0};
        bool at_end = pos >= value.size();
        if (!at_end) decoded = decode_rune(value, pos);
        ++generation;
        next.clear();
        for (const Thread& thread : current) {
            if (++steps > k_max_steps) return fail("pattern too expensive to match");
            const Instruction& instruction = m_program[thread.pc];
            if (instruction.op == Op::match) {
                best = Span{thread.start, pos};
                break;  // lower-priority threads can no longer win
            }
            if (at_end) continue;
            if ((instruction.op == Op::any && decoded.rune != U'\n') ||
                (instruction.op == Op::literal && instruction.rune == decoded.rune))
                add_thread(next, thread.pc + 1, thread.start);
        }
        if (at_end) break;
        pos += decoded.width;
        // A new attempt starting here has the lowest priority, and only while nothing has matched yet.
        if (!best && m_anchor == PatternAnchor::anywhere) add_thread(next, 0, pos);
        std::swap(current, next);
        if (current.empty()) break;
    }
    return best;
}

Result<std::string> ShellPattern::replace_all(std::string_view value, std::string_view replacement,
                                              size_t max_size) const {
    std::string out;
    size_t last_match_end = 0;
    size_t search = 0;
    while (search <= value.size()) {
        KILN_ASSIGN(std::optional<Span> span, find(value, search));
        if (!span) break;
        out.append(value.substr(last_match_end, span->begin - last_match_end));
        // No replacement for an empty match right after the previous match (Go's rule).
        if (span->end > last_match_end || span->begin == 0)
            expand_template(out, replacement, value.substr(span->begin, span->end - span->begin));
        last_match_end = span->end;
        if (out.size() > max_size) return fail(str_cat("the result is larger than ", max_size, " bytes"));
        size_t width = search < value.size() ? decode_rune(value, search).width : 0;
        if (search + width > span->end)
            search += width;
        else if (search + 1 > span->end)
            search += 1;
        else
            search = span->end;
    }
    out.append(value.substr(last_match_end));
    return out;
}

Result<std::string> trim_pattern_prefix(std::string_view pattern, std::string_view value, StarMatch star) {
    KILN_ASSIGN(ShellPattern compiled, ShellPattern::compile(pattern, star, PatternAnchor::start));
    KILN_ASSIGN(std::optional<ShellPattern::Span> span, compiled.find(value));
    if (!span) return std::string(value);
    return std::string(value.substr(span->end));
}

Result<std::string> trim_pattern_suffix(std::string_view pattern, std::string_view value, StarMatch star) {
    // Regular expressions find the leftmost match, so search the reversed value with the reversed pattern.
    std::u32string reversed_value = decode_runes(value);
    std::reverse(reversed_value.begin(), reversed_value.end());
    std::string reversed_pattern = encode_all(reverse_pattern(decode_runes(pattern)));
    KILN_ASSIGN(std::string trimmed, trim_pattern_prefix(reversed_pattern, encode_all(reversed_value), star));
    std::u32string runes = decode_runes(trimmed);
    std::reverse(runes.begin(), runes.end());
    return encode_all(runes);
}

}  // namespace kiln::dockerfile
