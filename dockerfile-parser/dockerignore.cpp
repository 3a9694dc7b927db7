#include "dockerfile-parser/dockerignore.hpp"

#include "common/strings.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

// One element of a compiled pattern. Docker turns patterns into a regular expression; these are its pieces.
struct Token {
    enum class Kind {
        literal,         // one rune
        any_but_slash,   // ?  → [^/]
        star,            // *  → [^/]*
        dirs,            // ** followed by more → (.*/)?
        rest,            // ** at the end → .*
        char_class,      // [...]
    } kind;
    char32_t rune = 0;
    bool negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;
};

// Reads one class character (with its escape) as filepath.Match does; false on a malformed class.
bool class_char(const std::u32string& runes, size_t& pos, char32_t& out) {
    if (pos >= runes.size() || runes[pos] == U'-' || runes[pos] == U']') return false;
    if (runes[pos] == U'\\') {
        ++pos;
        if (pos >= runes.size()) return false;
    }
    out = runes[pos++];
    return pos < runes.size();  // the class must still be closed later
}

Result<std::vector<Token>> compile_pattern(std::string_view pattern) {
    std::u32string runes = decode_runes(pattern);
    std::vector<Token> tokens;
    for (size_t pos = 0; pos < runes.size();) {
        char32_t rune = runes[pos++];
        if (rune == U'*') {
            if (pos < runes.size() && runes[pos] == U'*') {
                ++pos;
                if (pos < runes.size() && runes[pos] == U'/') ++pos;  // "**/" is the same as "**"
                tokens.push_back({pos == runes.size() ? Token::Kind::rest : Token::Kind::dirs});
            } else {
                tokens.push_back({Token::Kind::star});
            }
        } else if (rune == U'?') {
            tokens.push_back({Token::Kind::any_but_slash});
        } else if (rune == U'\\') {
            if (pos >= runes.size()) return fail(str_cat("syntax error in pattern ", go_quote(pattern)));
            tokens.push_back({Token::Kind::literal, runes[pos++]});
        } else if (rune == U'[') {
            Token token{Token::Kind::char_class};
            if (pos < runes.size() && runes[pos] == U'^') {
                token.negated = true;
                ++pos;
            }
            while (true) {
                if (pos < runes.size() && runes[pos] == U']' && !token.ranges.empty()) {
                    ++pos;
                    break;
                }
                char32_t low, high;
                if (!class_char(runes, pos, low)) return fail(str_cat("syntax error in pattern ", go_quote(pattern)));
                high = low;
                if (runes[pos] == U'-') {
                    ++pos;
                    if (!class_char(runes, pos, high))
                        return fail(str_cat("syntax error in pattern ", go_quote(pattern)));
                }
                token.ranges.emplace_back(low, high);
            }
            tokens.push_back(std::move(token));
        } else {
            tokens.push_back({Token::Kind::literal, rune});
        }
    }
    return tokens;
}

bool class_matches(const Token& token, char32_t rune) {
    bool inside = false;
    for (auto [low, high] : token.ranges)
        if (rune >= low && rune <= high) inside = true;
    return inside != token.negated;
}

// Whole-string match by simulating the pattern's automaton: state 2i is "before token i", 2i+1 is "inside
// the .* of a ** token i". Linear in the path length times the pattern length; no backtracking.
bool match_tokens(const std::vector<Token>& tokens, std::string_view path) {
    const size_t accept = 2 * tokens.size();
    std::vector<char> current(accept + 1, 0), next(accept + 1, 0);
    // Adds state `state` and everything reachable from it without consuming input.
    auto close = [&](std::vector<char>& set, size_t state) {
        while (true) {
            if (set[state]) return;
            set[state] = 1;
            if (state % 2 == 1 || state == accept) return;
            Token::Kind kind = tokens[state / 2].kind;
            if (kind != Token::Kind::star && kind != Token::Kind::dirs && kind != Token::Kind::rest) return;
            state += 2;
        }
    };
    close(current, 0);
    for (size_t pos = 0; pos < path.size();) {
        DecodedRune decoded = decode_rune(path, pos);
        pos += decoded.width;
        char32_t rune = decoded.rune;
        std::fill(next.begin(), next.end(), 0);
        bool any = false;
        for (size_t state = 0; state < accept; ++state) {
            if (!current[state]) continue;
            size_t index = state / 2;
            const Token& token = tokens[index];
            const size_t after = 2 * (index + 1);
            if (state % 2 == 1 || token.kind == Token::Kind::dirs) {
                // Inside (.*/): any rune but a newline stays; a '/' may also end it.
                if (rune != U'\n') close(next, 2 * index + 1), any = true;
                if (rune == U'/') close(next, after), any = true;
                continue;
            }
            switch (token.kind) {
                case Token::Kind::literal:
                    if (rune == token.rune) close(next, after), any = true;
                    break;
                case Token::Kind::any_but_slash:
                    if (rune != U'/') close(next, after), any = true;
                    break;
                case Token::Kind::star:
                    if (rune != U'/') close(next, state), any = true;
                    break;
                case Token::Kind::rest:
                    if (rune != U'\n') close(next, state), any = true;
                    break;
                case Token::Kind::char_class:
                    if (class_matches(token, rune)) close(next, after), any = true;
                    break;
                case Token::Kind::dirs:
                    break;
            }
        }
        if (!any) return false;
        std::swap(current, next);
    }
    return current[accept] != 0;
}

}  // namespace

struct IgnoreMatcher::Compiled {
    std::vector<Token> tokens;
    std::vector<std::vector<Token>> components;  // one compiled pattern per '/'-separated component
    std::vector<bool> component_has_globstar;
};

std::string clean_path(std::string_view path) {
    if (path.empty()) return ".";
    const bool rooted = path[0] == '/';
    std::string out;
    size_t read = 0;
    size_t dotdot = 0;  // out.size() below which ".." cannot backtrack
    if (rooted) {
        out += '/';
        read = dotdot = 1;
    }
    const size_t n = path.size();
    while (read < n) {
        if (path[read] == '/') {
            ++read;
        } else if (path[read] == '.' && (read + 1 == n || path[read + 1] == '/')) {
            ++read;
        } else if (path[read] == '.' && path[read + 1] == '.' && (read + 2 == n || path[read + 2] == '/')) {
            read += 2;
            if (out.size() > dotdot) {
                size_t w = out.size() - 1;
                while (w > dotdot && out[w] != '/') --w;
                out.resize(w);
            } else if (!rooted) {
                if (!out.empty()) out += '/';
                out += "..";
                dotdot = out.size();
            }
        } else {
            if ((rooted && out.size() != 1) || (!rooted && !out.empty())) out += '/';
            while (read < n && path[read] != '/') out += path[read++];
        }
    }
    if (out.empty()) return ".";
    return out;
}

IgnoreMatcher::IgnoreMatcher() = default;
IgnoreMatcher::~IgnoreMatcher() = default;
IgnoreMatcher::IgnoreMatcher(IgnoreMatcher&&) noexcept = default;
IgnoreMatcher& IgnoreMatcher::operator=(IgnoreMatcher&&) noexcept = default;

Result<IgnoreMatcher> IgnoreMatcher::parse(std::string_view text, std::string_view file_name) {
    std::vector<std::string> patterns;
    std::vector<int> lines;
    int line_number = 0;
    for (std::string_view rest = text; !rest.empty() || line_number == 0;) {
        size_t newline = rest.find('\n');
        std::string_view line = rest.substr(0, newline);
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line_number == 0 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
        ++line_number;
        if (line.starts_with('#')) continue;
        std::string_view pattern = trim_space(line);
        if (pattern.empty()) continue;
        bool exception = pattern[0] == '!';
        if (exception) pattern = trim_space(pattern.substr(1));
        std::string cleaned;
        if (!pattern.empty()) {
            cleaned = clean_path(pattern);
            if (cleaned.size() > 1 && cleaned[0] == '/') cleaned.erase(0, 1);
        }
        patterns.push_back(exception ? "!" + cleaned : cleaned);
        lines.push_back(line_number);
        if (newline == std::string_view::npos) break;
    }
    Result<IgnoreMatcher> matcher = from_patterns(patterns);
    if (!matcher) return fail(str_cat(file_name, ": ", matcher.error().message()));
    for (size_t i = 0; i < lines.size() && i < matcher->m_patterns.size(); ++i) matcher->m_patterns[i].line = lines[i];
    return matcher;
}

Result<IgnoreMatcher> IgnoreMatcher::from_patterns(const std::vector<std::string>& patterns) {
    IgnoreMatcher matcher;
    for (size_t i = 0; i < patterns.size(); ++i) {
        std::string_view text = trim_space(patterns[i]);
        if (text.empty()) continue;
        IgnorePattern pattern;
        pattern.line = static_cast<int>(i + 1);
        if (text[0] == '!') {
            if (text.size() == 1) return fail(str_cat("pattern ", i + 1, ": illegal exclusion pattern: \"!\""));
            pattern.exception = true;
            text.remove_prefix(1);
        }
        pattern.pattern = clean_path(text);
        auto compiled = std::make_unique<Compiled>();
        Result<std::vector<Token>> tokens = compile_pattern(pattern.pattern);
        if (!tokens) return fail(str_cat("pattern ", i + 1, ": ", tokens.error().message()));
        compiled->tokens = std::move(*tokens);
        for (const std::string& component : split(pattern.pattern, '/')) {
            KILN_ASSIGN(std::vector<Token> component_tokens, compile_pattern(component));
            compiled->components.push_back(std::move(component_tokens));
            compiled->component_has_globstar.push_back(component.find("**") != std::string::npos);
        }
        matcher.m_patterns.push_back(std::move(pattern));
        matcher.m_compiled.push_back(std::move(compiled));
    }
    return matcher;
}

bool IgnoreMatcher::matches(std::string_view relative_path) const {
    std::string path = clean_path(relative_path);
    while (path.size() > 1 && path[0] == '/') path.erase(0, 1);
    // Parents, shortest first: a pattern that matches a directory matches everything below it.
    std::vector<std::string_view> parents;
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
        parents.push_back(std::string_view(path).substr(0, slash));
    bool excluded = false;
    for (size_t i = 0; i < m_patterns.size(); ++i) {
        // Only a pattern that could change the verdict needs evaluating.
        if (m_patterns[i].exception != excluded) continue;
        const std::vector<Token>& tokens = m_compiled[i]->tokens;
        bool matched = match_tokens(tokens, path);
        for (size_t p = 0; !matched && p < parents.size(); ++p) matched = match_tokens(tokens, parents[p]);
        if (matched) excluded = !m_patterns[i].exception;
    }
    return excluded;
}

bool IgnoreMatcher::must_descend(std::string_view relative_dir) const {
    std::string dir = clean_path(relative_dir);
    while (dir.size() > 1 && dir[0] == '/') dir.erase(0, 1);
    std::vector<std::string> dir_components = dir == "." ? std::vector<std::string>() : split(dir, '/');
    for (size_t i = 0; i < m_patterns.size(); ++i) {
        if (!m_patterns[i].exception) continue;
        const Compiled& compiled = *m_compiled[i];
        bool possible = true;
        for (size_t c = 0; c < compiled.components.size() && c < dir_components.size(); ++c) {
            if (compiled.component_has_globstar[c]) break;  // ** can reach any depth
            if (!match_tokens(compiled.components[c], dir_components[c])) {
                possible = false;
                break;
            }
        }
        if (possible) return true;
    }
    return false;
}

bool IgnoreMatcher::has_exceptions() const {
    for (const IgnorePattern& pattern : m_patterns)
        if (pattern.exception) return true;
    return false;
}

}  // namespace kiln::dockerfile
