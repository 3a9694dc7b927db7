#include "dockerfile-parser/shell_expand.hpp"

#include <map>
#include <memory>

#include "common/strings.hpp"
#include "dockerfile-parser/shell_pattern.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

constexpr char32_t k_end = 0xFFFFFFFF;
constexpr char32_t k_byte_order_mark = 0xFEFF;
// ${a:-${b:-${c…}}} recurses once per level; a hostile word must not exhaust the stack.
constexpr size_t k_max_nesting = 256;
// The most bytes one expansion may produce: far above any command line a kernel takes (a single argument may
// have 128 KiB), and a bound on what nested ${VAR//pattern/replacement} could multiply.
constexpr size_t k_max_expansion = 1 << 20;

std::string rune_text(char32_t rune) {
    std::string text;
    append_rune(text, rune == k_end ? k_replacement_char : rune);
    return text;
}

bool is_special_parameter(char32_t rune) {
    switch (rune) {
        case '@': case '*': case '#': case '?': case '-': case '$': case '!': case '0':
            return true;
        default:
            return false;
    }
}

// The words being assembled: unquoted expansion results split on white space, quoted text never does.
class WordSplitter {
public:
    void add_char(char32_t rune) {
        if (is_space(rune)) {
            if (m_in_word && !m_word.empty()) {
                m_words.push_back(std::move(m_word));
                m_word.clear();
                m_in_word = false;
            }
            return;
        }
        add_raw_char(rune);
    }
    void add_raw_char(char32_t rune) {
        append_rune(m_word, rune);
        m_in_word = true;
    }
    void add_string(std::string_view text) {
        for (size_t pos = 0; pos < text.size();) {
            DecodedRune decoded = decode_rune(text, pos);
            add_char(decoded.rune);
            pos += decoded.width;
        }
    }
    void add_raw_string(std::string_view text) {
        m_word += text;
        m_in_word = true;
    }
    std::vector<std::string> take_words() {
        if (!m_word.empty()) {
            m_words.push_back(std::move(m_word));
            m_word.clear();
            m_in_word = false;
        }
        return std::move(m_words);
    }

private:
    std::string m_word;
    std::vector<std::string> m_words;
    bool m_in_word = false;
};

struct Processed {
    std::string result;
    std::vector<std::string> words;
};

class Lexer {
public:
    Lexer(std::string_view word, char escape, const ShellLexOptions& options, const EnvLookup& env)
        : m_escape(static_cast<unsigned char>(escape)), m_options(options), m_env(env) {
        for (size_t pos = 0; pos < word.size();) {
            DecodedRune decoded = decode_rune(word, pos);
            m_runes.push_back(decoded.rune);
            pos += decoded.width;
        }
        // Go's text/scanner skips a byte order mark at the very start.
        if (!m_runes.empty() && m_runes[0] == k_byte_order_mark) m_pos = 1;
    }

    Result<Processed> run() { return process_until(k_end, m_options.keep_escapes); }

    std::set<std::string> matched;
    std::set<std::string> unmatched;

private:
    char32_t peek() const { return m_pos < m_runes.size() ? m_runes[m_pos] : k_end; }
    char32_t next() { return m_pos < m_runes.size() ? m_runes[m_pos++] : k_end; }

    std::optional<std::string> lookup(const std::string& name) {
        std::optional<std::string> value = m_env ? m_env(name) : std::nullopt;
        (value ? matched : unmatched).insert(name);
        return value;
    }

    // Processes until `stop` (consumed) or the end of the word; `keep_escapes` overrides the option inside ${}.
    Result<Processed> process_until(char32_t stop, bool keep_escapes) {
        bool saved_keep_escapes = m_keep_escapes;
        m_keep_escapes = keep_escapes;
        Result<Processed> processed = process_until_inner(stop);
        m_keep_escapes = saved_keep_escapes;
        return processed;
    }

    Result<Processed> process_until_inner(char32_t stop) {
        std::string result;
        WordSplitter words;
        while (peek() != k_end) {
            char32_t rune = peek();
            if (stop != k_end && rune == stop) {
                next();
                return Processed{std::move(result), words.take_words()};
            }
            bool is_quote = !m_options.quotes_are_literal && (rune == '\'' || rune == '"');
            if (rune == '$' || is_quote) {
                Result<std::string> piece = rune == '$'    ? process_dollar()
                                            : rune == '\'' ? process_single_quote()
                                                           : process_double_quote();
                if (!piece) return std::unexpected(std::move(piece).error());
                result += *piece;
                if (result.size() > k_max_expansion)
                    return fail(str_cat("the expansion is larger than ", k_max_expansion, " bytes"));
                if (rune == '$')
                    words.add_string(*piece);
                else
                    words.add_raw_string(*piece);
                continue;
            }
            rune = next();
            if (rune == m_escape) {
                if (m_keep_escapes) {
                    words.add_raw_char(rune);
                    append_rune(result, rune);
                }
                // The escape character escapes the next one; at the end of the word it is dropped.
                rune = next();
                if (rune == k_end) break;
                words.add_raw_char(rune);
            } else {
                words.add_char(rune);
            }
            append_rune(result, rune);
        }
        if (stop != k_end)
            return fail(str_cat("unexpected end of statement while looking for matching ", rune_text(stop)));
        return Processed{std::move(result), words.take_words()};
    }

    Result<std::string> process_single_quote() {
        // Everything up to the next ' is literal; a ' cannot be escaped inside.
        std::string result;
        char32_t rune = next();
        if (m_options.keep_quotes) append_rune(result, rune);
        while (true) {
            rune = next();
            if (rune == k_end) return fail("unexpected end of statement while looking for matching single-quote");
            if (rune == '\'') {
                if (m_options.keep_quotes) append_rune(result, rune);
                return result;
            }
            append_rune(result, rune);
        }
    }

    Result<std::string> process_double_quote() {
        // Literal except $ expansions and the escape character before " $ or itself.
        std::string result;
        char32_t rune = next();
        if (m_options.keep_quotes) append_rune(result, rune);
        while (true) {
            char32_t ahead = peek();
            if (ahead == k_end) return fail("unexpected end of statement while looking for matching double-quote");
            if (ahead == '"') {
                rune = next();
                if (m_options.keep_quotes) append_rune(result, rune);
                return result;
            }
            if (ahead == '$') {
                KILN_ASSIGN(std::string value, process_dollar());
                result += value;
                continue;
            }
            rune = next();
            if (rune == m_escape) {
                if (m_keep_escapes) append_rune(result, rune);
                char32_t escaped = peek();
                if (escaped == k_end) continue;
                if (escaped == '"' || escaped == '$' || escaped == m_escape) rune = next();
            }
            append_rune(result, rune);
        }
    }

    // A name after '$': letters, digits and '_', or a run of digits (positional), or one special character.
    std::string process_name() {
        std::string name;
        while (peek() != k_end) {
            char32_t rune = peek();
            if (name.empty() && is_digit(rune)) {
                while (peek() != k_end && is_digit(peek())) append_rune(name, next());
                return name;
            }
            if (name.empty() && is_special_parameter(rune)) {
                append_rune(name, next());
                return name;
            }
            if (!is_letter(rune) && !is_digit(rune) && rune != '_') break;
            append_rune(name, next());
        }
        return name;
    }

    Result<std::string> process_dollar() {
        if (m_depth >= k_max_nesting) return fail("variable substitutions nested too deeply");
        ++m_depth;
        Result<std::string> value = process_dollar_inner();
        --m_depth;
        return value;
    }

    Result<std::string> process_dollar_inner() {
        next();  // '$'
        if (peek() != '{') {
            std::string name = process_name();
            if (name.empty()) return std::string("$");
            std::optional<std::string> value = lookup(name);
            if (!value && m_options.keep_unset) return "$" + name;
            return value.value_or("");
        }
        next();  // '{'
        char32_t first = peek();
        if (first == k_end) return fail("syntax error: missing '}'");
        if (first == '{' || first == '}' || first == ':') return fail("syntax error: bad substitution");

        std::string name = process_name();
        char32_t modifier = next();
        std::string modifier_text = rune_text(modifier);
        if (modifier == '}') {
            std::optional<std::string> value = lookup(name);
            if (!value && m_options.keep_unset) return str_cat("${", name, "}");
            return value.value_or("");
        }
        if (modifier == '/') return process_replacement(name);

        bool null_is_unset = false;
        if (modifier == ':') {
            null_is_unset = true;
            modifier = next();
            modifier_text += rune_text(modifier);
        } else if (modifier != '+' && modifier != '-' && modifier != '?' && modifier != '#' && modifier != '%') {
            return fail(str_cat("unsupported modifier (", modifier_text, ") in substitution"));
        }
        bool pattern_modifier = modifier == '#' || modifier == '%';
        if (null_is_unset && pattern_modifier)
            return fail(str_cat("unsupported modifier (", modifier_text, ") in substitution"));

        Result<Processed> word_result = process_until('}', pattern_modifier);
        if (!word_result) {
            if (peek() == k_end) return fail("syntax error: missing '}'");
            return std::unexpected(std::move(word_result).error());
        }
        std::string word = std::move(word_result->result);

        std::optional<std::string> value = lookup(name);
        if (m_options.keep_unset && !value) return str_cat("${", name, modifier_text, word, "}");
        bool empty_or_unset = !value || (null_is_unset && value->empty());
        switch (modifier) {
            case '-':
                return empty_or_unset ? word : *value;
            case '+':
                return empty_or_unset ? std::string() : word;
            case '?':
                if (!value) return fail(str_cat(name, ": ", word.empty() ? "is not allowed to be unset" : word));
                if (null_is_unset && value->empty())
                    return fail(str_cat(name, ": ", word.empty() ? "is not allowed to be empty" : word));
                return *value;
            case '#':
            case '%': {
                StarMatch star = StarMatch::shortest;
                if (!word.empty() && static_cast<char32_t>(static_cast<unsigned char>(word[0])) == modifier) {
                    star = StarMatch::longest;
                    word.erase(0, 1);
                }
                // An unset variable trims as the empty string, as in buildkit (and as ${VAR/p/r} does below).
                std::string subject = value.value_or("");
                Result<std::string> trimmed = modifier == '%' ? trim_pattern_suffix(word, subject, star)
                                                              : trim_pattern_prefix(word, subject, star);
                if (!trimmed) return fail(str_cat("invalid pattern (", word, ") in substitution: ",
                                                  trimmed.error().message()));
                return trimmed;
            }
            default:
                return fail(str_cat("unsupported modifier (", modifier_text, ") in substitution"));
        }
    }

    Result<std::string> process_replacement(const std::string& name) {
        bool replace_all = peek() == '/';
        if (replace_all) next();
        Result<Processed> pattern = process_until('/', true);
        if (!pattern) {
            if (peek() == k_end) return fail("syntax error: missing '/' in ${}");
            return std::unexpected(std::move(pattern).error());
        }
        Result<Processed> replacement = process_until('}', true);
        if (!replacement) {
            if (peek() == k_end) return fail("syntax error: missing '}'");
            return std::unexpected(std::move(replacement).error());
        }
        std::optional<std::string> value = lookup(name);
        if (m_options.keep_unset && !value)
            return str_cat("${", name, "/", pattern->result, "/", replacement->result, "}");
        std::string subject = value.value_or("");
        Result<ShellPattern> compiled =
            ShellPattern::compile(pattern->result, StarMatch::longest, PatternAnchor::anywhere);
        if (!compiled)
            return fail(str_cat("invalid pattern (", pattern->result, ") in substitution: ",
                                compiled.error().message()));
        if (replace_all) {
            Result<std::string> replaced = compiled->replace_all(subject, replacement->result, k_max_expansion);
            if (!replaced) return fail(str_cat("substitution ${", name, "//…}: ", replaced.error().message()));
            return replaced;
        }
        KILN_ASSIGN(std::optional<ShellPattern::Span> span, compiled->find(subject));
        if (!span) return subject;
        return str_cat(subject.substr(0, span->begin), replacement->result, subject.substr(span->end));
    }

    std::u32string m_runes;
    size_t m_pos = 0;
    char32_t m_escape;
    const ShellLexOptions& m_options;
    const EnvLookup& m_env;
    bool m_keep_escapes = false;
    size_t m_depth = 0;
};

}  // namespace

EnvLookup env_from_list(std::vector<std::string> entries) {
    auto values = std::make_shared<std::map<std::string, std::string, std::less<>>>();
    for (const std::string& entry : entries) {
        size_t equals = entry.find('=');
        std::string name = entry.substr(0, equals);
        (*values)[name] = equals == std::string::npos ? std::string() : entry.substr(equals + 1);
    }
    return [values](std::string_view name) -> std::optional<std::string> {
        auto found = values->find(name);
        if (found == values->end()) return std::nullopt;
        return found->second;
    };
}

ShellExpander::ShellExpander(char escape, ShellLexOptions options) : m_escape(escape), m_options(options) {}

Result<ShellExpansion> ShellExpander::expand(std::string_view word, const EnvLookup& env) const {
    Lexer lexer(word, m_escape, m_options, env);
    Result<Processed> processed = lexer.run();
    if (!processed) return fail(std::move(processed.error()).context(str_cat("failed to process ", go_quote(word))));
    return ShellExpansion{std::move(processed->result), std::move(processed->words), std::move(lexer.matched),
                          std::move(lexer.unmatched)};
}

Result<std::string> ShellExpander::process_word(std::string_view word, const EnvLookup& env) const {
    KILN_ASSIGN(ShellExpansion expansion, expand(word, env));
    return std::move(expansion.result);
}

Result<std::vector<std::string>> ShellExpander::process_words(std::string_view word, const EnvLookup& env) const {
    KILN_ASSIGN(ShellExpansion expansion, expand(word, env));
    return std::move(expansion.words);
}

}  // namespace kiln::dockerfile
