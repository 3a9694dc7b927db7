#pragma once
// The few Unicode facts the Dockerfile grammar depends on, with Go's semantics, because buildkit (written in Go)
// defines the behaviour: UTF-8 decoding that turns each invalid byte into U+FFFD, unicode.IsSpace/IsLetter/
// IsDigit/IsPrint, strings.TrimSpace and strconv.Quote. Internal to kiln_dockerfile.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::dockerfile {

inline constexpr char32_t k_replacement_char = 0xFFFD;

struct DecodedRune {
    char32_t rune;
    size_t width;  // bytes consumed; 1 for an invalid byte (rune is then U+FFFD)
};

// Decodes the rune at `text[pos]` (pos < size) like Go's utf8.DecodeRuneInString.
DecodedRune decode_rune(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `rune` (invalid code points become U+FFFD), like Go's utf8.AppendRune.
void append_rune(std::string& out, char32_t rune);

// Every rune of `text`; invalid bytes decode as decode_rune says.
std::u32string decode_runes(std::string_view text);

// Go's unicode.IsSpace.
bool is_space(char32_t rune);
// Go's unicode.IsLetter (category L).
bool is_letter(char32_t rune);
// Go's unicode.IsDigit (category Nd).
bool is_digit(char32_t rune);
// Go's unicode.IsPrint: categories L, M, N, P, S and the ASCII space.
bool is_print(char32_t rune);

// Go's strings.TrimSpace: strips leading and trailing Unicode white space.
std::string_view trim_space(std::string_view text);
// Go's strings.TrimLeftFunc(text, unicode.IsSpace).
std::string_view trim_left_space(std::string_view text);

// Go's strconv.Quote, byte for byte: the form the parse dump prints every value in.
std::string go_quote(std::string_view text);

struct CodePointRange {
    char32_t low;
    char32_t high;
};

}  // namespace kiln::dockerfile
