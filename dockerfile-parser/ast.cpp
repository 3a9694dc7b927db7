// One logical line → one Node: keyword, leading flags, and the argument form of each instruction.

#include "common/strings.hpp"
#include "dockerfile-parser/json_array.hpp"
#include "dockerfile-parser/parse_internal.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile::detail {

namespace {

// ONBUILD ONBUILD … is refused later anyway; this bound keeps a hostile line from recursing without end.
constexpr int k_max_onbuild_depth = 16;

// Go's unicode.IsSpace applied to a single byte, which is what buildkit's byte loops do: 0x85 and 0xA0 count.
bool is_space_byte(char c) { return is_space(static_cast<unsigned char>(c)); }

// Leading "--" words become flags; quotes are removed and a backslash escapes the next byte. buildkit works
// byte by byte here and turns each byte into a rune, so a non-ASCII byte is re-encoded as Latin-1.
void extract_flags(std::string_view line, std::vector<std::string>& flags, std::string_view& rest) {
    enum class Phase { spaces, word, quote };
    Phase phase = Phase::spaces;
    std::string word;
    char quote = 0;
    bool blank_ok = false;
    rest = {};
    for (size_t pos = 0; pos <= line.size(); ++pos) {
        char c = pos < line.size() ? line[pos] : 0;
        if (phase == Phase::spaces) {
            if (pos == line.size()) return;
            if (is_space_byte(c)) continue;
            if (c != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
                rest = line.substr(pos);
                return;
            }
            phase = Phase::word;
        }
        if (pos == line.size()) {
            if (word != "--" && (blank_ok || !word.empty())) flags.push_back(word);
            return;
        }
        if (phase == Phase::word) {
            if (is_space_byte(c)) {
                phase = Phase::spaces;
                if (word == "--") {
                    rest = line.substr(pos);
                    return;
                }
                if (blank_ok || !word.empty()) flags.push_back(word);
                word.clear();
                blank_ok = false;
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                blank_ok = true;
                phase = Phase::quote;
                continue;
            }
            if (c == '\\') {
                if (pos + 1 == line.size()) continue;  // a trailing backslash is dropped
                c = line[++pos];
            }
            append_rune(word, static_cast<unsigned char>(c));
            continue;
        }
        // Phase::quote
        if (c == quote) {
            phase = Phase::word;
            continue;
        }
        if (c == '\\') {
            if (pos + 1 == line.size()) {
                phase = Phase::word;
                continue;
            }
            c = line[++pos];
        }
        append_rune(word, static_cast<unsigned char>(c));
    }
}

// Splits on unquoted white space for ENV/LABEL/ARG; quotes and escapes stay in the words. Works on runes, so
// invalid UTF-8 becomes U+FFFD.
std::vector<std::string> parse_words(std::string_view rest, char escape) {
    enum class Phase { spaces, word, quote };
    std::vector<std::string> words;
    Phase phase = Phase::spaces;
    std::string word;
    char32_t quote = 0;
    bool blank_ok = false;
    const char32_t escape_rune = static_cast<unsigned char>(escape);
    DecodedRune current{0, 0};
    for (size_t pos = 0; pos <= rest.size(); pos += current.width) {
        if (pos != rest.size()) current = decode_rune(rest, pos);
        char32_t c = current.rune;
        if (phase == Phase::spaces) {
            if (pos == rest.size()) break;
            if (is_space(c)) continue;
            phase = Phase::word;
        }
        if (pos == rest.size()) {
            if (blank_ok || !word.empty()) words.push_back(word);
            break;
        }
        if (phase == Phase::word) {
            if (is_space(c)) {
                phase = Phase::spaces;
                if (blank_ok || !word.empty()) words.push_back(word);
                word.clear();
                blank_ok = false;
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                blank_ok = true;
                phase = Phase::quote;
            }
            if (c == escape_rune) {
                if (pos + current.width == rest.size()) continue;  // an escape at the end is dropped
                // Unquoted, the escape and the character it escapes are both kept, even a quote.
                append_rune(word, c);
                pos += current.width;
                current = decode_rune(rest, pos);
                c = current.rune;
            }
            append_rune(word, c);
            continue;
        }
        // Phase::quote
        if (c == quote) phase = Phase::word;
        // Inside single quotes nothing can be escaped.
        if (c == escape_rune && quote != '\'') {
            if (pos + current.width == rest.size()) {
                phase = Phase::word;
                continue;
            }
            append_rune(word, c);
            pos += current.width;
            current = decode_rune(rest, pos);
            c = current.rune;
        }
        append_rune(word, c);
    }
    return words;
}

Status parse_json_or(std::string_view rest, Node& node, bool& parsed) {
    parsed = false;
    std::string_view trimmed = trim_left_space(rest);
    if (trimmed.empty() || trimmed[0] != '[') return {};
    std::vector<std::string> elements;
    switch (parse_json_string_array(trimmed, elements)) {
        case JsonArrayStatus::strings:
            node.args = std::move(elements);
            node.json_form = true;
            parsed = true;
            return {};
        case JsonArrayStatus::not_strings:
            return fail("when using JSON array syntax, arrays must be comprised of strings only");
        case JsonArrayStatus::not_json:
            return {};
    }
    return {};
}

// RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or the whole rest as one shell string.
Status parse_maybe_json(std::string_view rest, Node& node) {
    if (rest.empty()) return {};
    bool parsed;
    KILN_TRY(parse_json_or(rest, node, parsed));
    if (!parsed) node.args = {std::string(rest)};
    return {};
}

// ADD, COPY, VOLUME: a JSON array, or words split on blanks.
Status parse_maybe_json_to_list(std::string_view rest, Node& node) {
    bool parsed;
    KILN_TRY(parse_json_or(rest, node, parsed));
    if (!parsed && !rest.empty()) node.args = split_on_blanks(rest);
    return {};
}

void add_key_value(Node& node, std::string key, std::string value, std::string_view separator) {
    node.args.push_back(std::move(key));
    node.args.push_back(std::move(value));
    node.args.emplace_back(separator);
}

// ENV and LABEL: "k=v k2=v2" (raw values) or the legacy "k v w".
Status parse_name_value(std::string_view rest, std::string_view instruction, char escape, Node& node) {
    std::vector<std::string> words = parse_words(rest, escape);
    if (words.empty()) return {};
    if (words[0].find('=') == std::string::npos) {
        std::vector<std::string> parts = split_on_blanks(rest, 2);
        if (parts.size() < 2) return fail(str_cat(instruction, " must have two arguments"));
        add_key_value(node, std::move(parts[0]), std::move(parts[1]), "");
        return {};
    }
    for (std::string& word : words) {
        size_t equals = word.find('=');
        if (equals == std::string::npos)
            return fail(str_cat("Syntax error - can't find = in ", go_quote(word),
                                ". Must be of the form: name=value"));
        add_key_value(node, word.substr(0, equals), word.substr(equals + 1), "=");
    }
    return {};
}

// HEALTHCHECK: the type word as written, then the rest as for CMD.
Status parse_health_config(std::string_view rest, Node& node) {
    size_t separator = 0;
    while (separator < rest.size() && !is_space_byte(rest[separator])) ++separator;
    size_t next = separator;
    while (next < rest.size() && is_space_byte(rest[next])) ++next;
    if (separator == 0) return {};
    Node command;
    KILN_TRY(parse_maybe_json(rest.substr(next), command));
    node.args.emplace_back(rest.substr(0, separator));
    for (std::string& arg : command.args) node.args.push_back(std::move(arg));
    node.json_form = command.json_form;
    return {};
}

}  // namespace

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

std::vector<std::string> split_on_blanks(std::string_view text, size_t max_parts) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        if (max_parts && parts.size() + 1 == max_parts) break;
        size_t blank = start;
        while (blank < text.size() && !is_blank(text[blank])) ++blank;
        if (blank == text.size()) break;
        size_t after = blank;
        while (after < text.size() && is_blank(text[after])) ++after;
        parts.emplace_back(text.substr(start, blank - start));
        start = after;
    }
    parts.emplace_back(text.substr(start));
    return parts;
}

std::string lower_keyword(std::string_view keyword) {
    std::string lower;
    lower.reserve(keyword.size());
    for (size_t pos = 0; pos < keyword.size();) {
        unsigned char byte = static_cast<unsigned char>(keyword[pos]);
        if (byte < 0x80) {
            lower += static_cast<char>(byte >= 'A' && byte <= 'Z' ? byte + ('a' - 'A') : byte);
            ++pos;
            continue;
        }
        DecodedRune decoded = decode_rune(keyword, pos);
        if (decoded.rune == 0x212A)  // KELVIN SIGN
            lower += 'k';
        else if (decoded.rune == 0x130)  // LATIN CAPITAL LETTER I WITH DOT ABOVE
            lower += 'i';
        else
            append_rune(lower, decoded.rune);
        pos += decoded.width;
    }
    return lower;
}

Result<Node> node_from_line(std::string_view line, char escape, int depth) {
    Node node;
    node.original = std::string(line);
    std::string_view trimmed = trim_space(line);
    size_t blank = 0;
    while (blank < trimmed.size() && !is_blank(trimmed[blank])) ++blank;
    node.keyword = std::string(trimmed.substr(0, blank));
    std::string_view rest;
    if (blank < trimmed.size()) {
        size_t after = blank;
        while (after < trimmed.size() && is_blank(trimmed[after])) ++after;
        extract_flags(trimmed.substr(after), node.flags, rest);
    }
    rest = trim_space(rest);

    std::string command = lower_keyword(node.keyword);
    if (command == "add" || command == "copy" || command == "volume") {
        KILN_TRY(parse_maybe_json_to_list(rest, node));
    } else if (command == "run" || command == "cmd" || command == "entrypoint" || command == "shell") {
        KILN_TRY(parse_maybe_json(rest, node));
    } else if (command == "from" || command == "expose") {
        if (!rest.empty()) node.args = split_on_blanks(rest);
    } else if (command == "env" || command == "label") {
        KILN_TRY(parse_name_value(rest, command == "env" ? "ENV" : "LABEL", escape, node));
    } else if (command == "arg") {
        node.args = parse_words(rest, escape);
    } else if (command == "maintainer" || command == "stopsignal" || command == "user" || command == "workdir") {
        if (!rest.empty()) node.args = {std::string(rest)};
    } else if (command == "healthcheck") {
        KILN_TRY(parse_health_config(rest, node));
    } else if (command == "onbuild") {
        if (!rest.empty()) {
            if (depth >= k_max_onbuild_depth) return fail("ONBUILD triggers nested too deeply");
            KILN_ASSIGN(Node trigger, node_from_line(rest, escape, depth + 1));
            node.children.push_back(std::move(trigger));
        }
    } else {
        // Unknown instructions keep no arguments; the instruction stage reports them.
        node.args = {std::string()};
    }
    return node;
}

bool can_contain_heredoc(const Node& node) {
    const Node* target = &node;
    if (node.command() == "onbuild" && !node.children.empty()) target = &node.children[0];
    std::string command = target->command();
    if (command != "run" && command != "copy" && command != "add") return false;
    return !target->json_form;
}

}  // namespace kiln::dockerfile::detail

namespace kiln::dockerfile {

std::string Node::command() const { return detail::lower_keyword(keyword); }

}  // namespace kiln::dockerfile
