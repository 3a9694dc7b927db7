#include "dockerfile-parser/unicode.hpp"

#include <algorithm>

namespace kiln::dockerfile {

namespace unicode_tables {
extern const CodePointRange k_graphic[];
extern const size_t k_graphic_size;
extern const CodePointRange k_letter[];
extern const size_t k_letter_size;
extern const CodePointRange k_decimal_digit[];
extern const size_t k_decimal_digit_size;
}  // namespace unicode_tables

namespace {

bool in_table(char32_t rune, const CodePointRange* table, size_t size) {
    const CodePointRange* end = table + size;
    const CodePointRange* found =
        std::upper_bound(table, end, rune, [](char32_t value, const CodePointRange& range) {
            return value < range.low;
        });
    if (found == table) return false;
    --found;
    return rune >= found->low && rune <= found->high;
}

constexpr char k_hex[] = "0123456789abcdef";

}  // namespace

DecodedRune decode_rune(std::string_view text, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char first = byte(pos);
    if (first < 0x80) return {first, 1};
    size_t remaining = text.size() - pos;
    const auto continuation = [&](size_t i) { return i < remaining && (byte(pos + i) & 0xC0) == 0x80; };
    if (first >= 0xC2 && first <= 0xDF) {
        if (!continuation(1)) return {k_replacement_char, 1};
        return {static_cast<char32_t>(((first & 0x1F) << 6) | (byte(pos + 1) & 0x3F)), 2};
    }
    if (first >= 0xE0 && first <= 0xEF) {
        if (!continuation(1) || !continuation(2)) return {k_replacement_char, 1};
        unsigned char second = byte(pos + 1);
        // Overlong forms and UTF-16 surrogates are invalid, as in Go.
        if ((first == 0xE0 && second < 0xA0) || (first == 0xED && second > 0x9F)) return {k_replacement_char, 1};
        return {static_cast<char32_t>(((first & 0x0F) << 12) | ((second & 0x3F) << 6) | (byte(pos + 2) & 0x3F)), 3};
    }
    if (first >= 0xF0 && first <= 0xF4) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) return {k_replacement_char, 1};
        unsigned char second = byte(pos + 1);
        if ((first == 0xF0 && second < 0x90) || (first == 0xF4 && second > 0x8F)) return {k_replacement_char, 1};
        return {static_cast<char32_t>(((first & 0x07) << 18) | ((second & 0x3F) << 12) |
                                      ((byte(pos + 2) & 0x3F) << 6) | (byte(pos + 3) & 0x3F)),
                4};
    }
    return {k_replacement_char, 1};
}

std::u32string decode_runes(std::string_view text) {
    std::u32string runes;
    for (size_t pos = 0; pos < text.size();) {
        DecodedRune decoded = decode_rune(text, pos);
        runes.push_back(decoded.rune);
        pos += decoded.width;
    }
    return runes;
}

void append_rune(std::string& out, char32_t rune) {
    if (rune > 0x10FFFF || (rune >= 0xD800 && rune <= 0xDFFF)) rune = k_replacement_char;
    if (rune < 0x80) {
        out += static_cast<char>(rune);
    } else if (rune < 0x800) {
        out += static_cast<char>(0xC0 | (rune >> 6));
        out += static_cast<char>(0x80 | (rune & 0x3F));
    } else if (rune < 0x10000) {
        out += static_cast<char>(0xE0 | (rune >> 12));
        out += static_cast<char>(0x80 | ((rune >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (rune & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (rune >> 18));
        out += static_cast<char>(0x80 | ((rune >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((rune >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (rune & 0x3F));
    }
}

bool is_space(char32_t rune) {
    switch (rune) {
        case '\t': case '\n': case '\v': case '\f': case '\r': case ' ': case 0x85: case 0xA0:
        case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return rune >= 0x2000 && rune <= 0x200A;
    }
}

bool is_letter(char32_t rune) {
    if (rune < 0x80) return (rune >= 'a' && rune <= 'z') || (rune >= 'A' && rune <= 'Z');
    return in_table(rune, unicode_tables::k_letter, unicode_tables::k_letter_size);
}

bool is_digit(char32_t rune) {
    if (rune < 0x80) return rune >= '0' && rune <= '9';
    return in_table(rune, unicode_tables::k_decimal_digit, unicode_tables::k_decimal_digit_size);
}

bool is_print(char32_t rune) {
    if (rune < 0x80) return rune >= 0x20 && rune < 0x7F;
    return in_table(rune, unicode_tables::k_graphic, unicode_tables::k_graphic_size);
}

std::string_view trim_left_space(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        DecodedRune decoded = decode_rune(text, pos);
        if (decoded.width == 1 && decoded.rune == k_replacement_char) break;
        if (!is_space(decoded.rune)) break;
        pos += decoded.width;
    }
    return text.substr(pos);
}

std::string_view trim_space(std::string_view text) {
    text = trim_left_space(text);
    // Walk backwards over whole runes: find the start of the last rune, test it, repeat.
    size_t end = text.size();
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        DecodedRune decoded = decode_rune(text, start);
        if (start + decoded.width != end) {
            // Not a whole rune ending here: the last byte is invalid on its own, so not a space.
            break;
        }
        if (!is_space(decoded.rune)) break;
        end = start;
    }
    return text.substr(0, end);
}

std::string go_quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (size_t pos = 0; pos < text.size();) {
        DecodedRune decoded = decode_rune(text, pos);
        char32_t rune = decoded.rune;
        if (decoded.width == 1 && rune == k_replacement_char) {
            unsigned char byte = static_cast<unsigned char>(text[pos]);
            out += "\\x";
            out += k_hex[byte >> 4];
            out += k_hex[byte & 0xF];
            pos += 1;
            continue;
        }
        if (rune == '"' || rune == '\\') {
            out += '\\';
            out += static_cast<char>(rune);
        } else if (is_print(rune)) {
            out.append(text.substr(pos, decoded.width));
        } else {
            switch (rune) {
                case '\a': out += "\\a"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                case '\v': out += "\\v"; break;
                default:
                    if (rune < ' ' || rune == 0x7F) {
                        out += "\\x";
                        out += k_hex[(rune >> 4) & 0xF];
                        out += k_hex[rune & 0xF];
                    } else if (rune < 0x10000) {
                        out += "\\u";
                        for (int shift = 12; shift >= 0; shift -= 4) out += k_hex[(rune >> shift) & 0xF];
                    } else {
                        out += "\\U";
                        for (int shift = 28; shift >= 0; shift -= 4) out += k_hex[(rune >> shift) & 0xF];
                    }
            }
        }
        pos += decoded.width;
    }
    out += '"';
    return out;
}

}  // namespace kiln::dockerfile
