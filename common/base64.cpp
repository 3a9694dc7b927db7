#include "common/base64.hpp"

#include <cstdint>

namespace kiln {
namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string encoded;
    encoded.reserve((bytes.size() + 2) / 3 * 4);
    for (size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 2]);
        encoded += k_alphabet[(group >> 18) & 63];
        encoded += k_alphabet[(group >> 12) & 63];
        encoded += i + 1 < bytes.size() ? k_alphabet[(group >> 6) & 63] : '=';
        encoded += i + 2 < bytes.size() ? k_alphabet[group & 63] : '=';
    }
    return encoded;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string decoded;
    decoded.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int padding = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        if (padding == 1 && text[i + 2] == '=') return std::nullopt;  // "x=y=" is not padding
        std::uint32_t group = 0;
        for (int j = 0; j < 4; ++j) {
            int value = j >= 4 - padding ? 0 : decode_char(text[i + j]);
            if (value < 0) return std::nullopt;
            group = (group << 6) | static_cast<std::uint32_t>(value);
        }
        decoded += static_cast<char>(group >> 16);
        if (padding < 2) decoded += static_cast<char>((group >> 8) & 0xff);
        if (padding < 1) decoded += static_cast<char>(group & 0xff);
    }
    return decoded;
}

}  // namespace kiln
