#include "dockerfile-parser/json_array.hpp"

#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

// Go's scanner refuses deeper nesting; beyond it the text is "not JSON" rather than a stack overflow.
constexpr size_t k_max_depth = 10000;

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class JsonScanner {
public:
    explicit JsonScanner(std::string_view text) : m_text(text) {}

    JsonArrayStatus parse(std::vector<std::string>& elements) {
        elements.clear();
        skip_space();
        if (!at('[')) return JsonArrayStatus::not_json;
        ++m_pos;
        bool all_strings = true;
        skip_space();
        if (at(']')) {
            ++m_pos;
        } else {
            while (true) {
                skip_space();
                if (at('"')) {
                    std::string decoded;
                    if (!scan_string(&decoded)) return JsonArrayStatus::not_json;
                    elements.push_back(std::move(decoded));
                } else {
                    all_strings = false;
                    if (!scan_value()) return JsonArrayStatus::not_json;
                }
                skip_space();
                if (at(',')) {
                    ++m_pos;
                    continue;
                }
                if (at(']')) {
                    ++m_pos;
                    break;
                }
                return JsonArrayStatus::not_json;
            }
        }
        skip_space();
        if (m_pos != m_text.size()) return JsonArrayStatus::not_json;
        return all_strings ? JsonArrayStatus::strings : JsonArrayStatus::not_strings;
    }

private:
    bool at(char c) const { return m_pos < m_text.size() && m_text[m_pos] == c; }
    void skip_space() {
        while (m_pos < m_text.size() && is_json_space(m_text[m_pos])) ++m_pos;
    }

    bool scan_literal(std::string_view word) {
        if (m_text.substr(m_pos, word.size()) != word) return false;
        m_pos += word.size();
        return true;
    }

    bool scan_number() {
        if (at('-')) ++m_pos;
        if (at('0')) {
            ++m_pos;
        } else if (m_pos < m_text.size() && m_text[m_pos] >= '1' && m_text[m_pos] <= '9') {
            while (m_pos < m_text.size() && is_ascii_digit(m_text[m_pos])) ++m_pos;
        } else {
            return false;
        }
        if (at('.')) {
            ++m_pos;
            if (!(m_pos < m_text.size() && is_ascii_digit(m_text[m_pos]))) return false;
            while (m_pos < m_text.size() && is_ascii_digit(m_text[m_pos])) ++m_pos;
        }
        if (at('e') || at('E')) {
            ++m_pos;
            if (at('+') || at('-')) ++m_pos;
            if (!(m_pos < m_text.size() && is_ascii_digit(m_text[m_pos]))) return false;
            while (m_pos < m_text.size() && is_ascii_digit(m_text[m_pos])) ++m_pos;
        }
        return true;
    }

    bool read_hex4(size_t pos, char32_t& value) const {
        if (pos + 4 > m_text.size()) return false;
        value = 0;
        for (size_t i = 0; i < 4; ++i) {
            int digit = hex_value(m_text[pos + i]);
            if (digit < 0) return false;
            value = (value << 4) | static_cast<char32_t>(digit);
        }
        return true;
    }

    // Scans a string starting at '"'; decodes into `out` when given.
    bool scan_string(std::string* out) {
        ++m_pos;
        while (m_pos < m_text.size()) {
            unsigned char c = static_cast<unsigned char>(m_text[m_pos]);
            if (c == '"') {
                ++m_pos;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                if (m_pos + 1 >= m_text.size()) return false;
                char escape = m_text[m_pos + 1];
                char simple = 0;
                switch (escape) {
                    case '"': simple = '"'; break;
                    case '\\': simple = '\\'; break;
                    case '/': simple = '/'; break;
                    case 'b': simple = '\b'; break;
                    case 'f': simple = '\f'; break;
                    case 'n': simple = '\n'; break;
                    case 'r': simple = '\r'; break;
                    case 't': simple = '\t'; break;
                    case 'u': break;
                    default: return false;
                }
                if (simple) {
                    if (out) *out += simple;
                    m_pos += 2;
                    continue;
                }
                char32_t unit;
                if (!read_hex4(m_pos + 2, unit)) return false;
                m_pos += 6;
                if (unit >= 0xD800 && unit < 0xE000) {
                    // A high surrogate followed by an escaped low one is one rune; anything else is U+FFFD and
                    // the following escape is decoded on its own.
                    char32_t low;
                    if (unit < 0xDC00 && at('\\') && m_pos + 1 < m_text.size() && m_text[m_pos + 1] == 'u' &&
                        read_hex4(m_pos + 2, low) && low >= 0xDC00 && low < 0xE000) {
                        m_pos += 6;
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    } else {
                        unit = k_replacement_char;
                    }
                }
                if (out) append_rune(*out, unit);
                continue;
            }
            DecodedRune decoded = decode_rune(m_text, m_pos);
            if (out) {
                if (decoded.width == 1 && decoded.rune == k_replacement_char)
                    append_rune(*out, k_replacement_char);
                else
                    out->append(m_text.substr(m_pos, decoded.width));
            }
            m_pos += decoded.width;
        }
        return false;
    }

    // Validates any JSON value without recursion: a stack of open containers ('[' or '{').
    bool scan_value() {
        std::string stack;
        while (true) {
            skip_space();
            if (m_pos >= m_text.size()) return false;
            char c = m_text[m_pos];
            bool value_done = false;
            if (c == '[' || c == '{') {
                if (stack.size() + 1 >= k_max_depth) return false;
                stack.push_back(c);
                ++m_pos;
                skip_space();
                if (at(c == '[' ? ']' : '}')) {
                    ++m_pos;
                    stack.pop_back();
                    value_done = true;
                } else if (c == '{') {
                    if (!scan_key()) return false;
                    continue;
                } else {
                    continue;
                }
            } else if (c == '"') {
                if (!scan_string(nullptr)) return false;
                value_done = true;
            } else if (c == 't') {
                if (!scan_literal("true")) return false;
                value_done = true;
            } else if (c == 'f') {
                if (!scan_literal("false")) return false;
                value_done = true;
            } else if (c == 'n') {
                if (!scan_literal("null")) return false;
                value_done = true;
            } else {
                if (!scan_number()) return false;
                value_done = true;
            }
            // After a complete value: close containers or move to the next element.
            while (value_done) {
                if (stack.empty()) return true;
                skip_space();
                char open = stack.back();
                if (at(',')) {
                    ++m_pos;
                    if (open == '{' && !scan_key()) return false;
                    value_done = false;
                } else if (at(open == '[' ? ']' : '}')) {
                    ++m_pos;
                    stack.pop_back();
                } else {
                    return false;
                }
            }
        }
    }

    // Scans `"key" :` inside an object.
    bool scan_key() {
        skip_space();
        if (!at('"') || !scan_string(nullptr)) return false;
        skip_space();
        if (!at(':')) return false;
        ++m_pos;
        return true;
    }

    std::string_view m_text;
    size_t m_pos = 0;
};

}  // namespace

JsonArrayStatus parse_json_string_array(std::string_view text, std::vector<std::string>& elements) {
    return JsonScanner(text).parse(elements);
}

}  // namespace kiln::dockerfile
