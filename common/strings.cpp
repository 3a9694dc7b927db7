#include "common/strings.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace kiln {

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t end = text.find(separator, start);
        if (end == std::string_view::npos) {
            parts.emplace_back(text.substr(start));
            return parts;
        }
        parts.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) joined += separator;
        joined += parts[i];
    }
    return joined;
}

std::string_view trim(std::string_view text) {
    size_t begin = 0;
    while (begin < text.size() && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
    size_t end = text.size();
    while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
    return text.substr(begin, end - begin);
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower;
}

bool parse_uint64(std::string_view text, std::uint64_t& value) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size();
}

std::string format_bytes(std::uint64_t bytes) {
    static const char* const k_units[] = {"B", "kB", "MB", "GB", "TB"};
    double value = static_cast<double>(bytes);
    size_t unit = 0;
    while (value >= 1000 && unit + 1 < std::size(k_units)) {
        value /= 1000;
        ++unit;
    }
    char buffer[32];
    if (unit == 0)
        std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
    else
        std::snprintf(buffer, sizeof buffer, "%.1f %s", value, k_units[unit]);
    return buffer;
}

std::string printable_excerpt(std::string_view text, size_t limit) {
    std::string clean;
    for (char c : trim(text)) {
        if (clean.size() >= limit) {
            clean += "...";
            break;
        }
        auto byte = static_cast<unsigned char>(c);
        clean += byte < 0x20 || byte == 0x7f ? ' ' : c;
    }
    return std::string(trim(clean));
}

std::string format_seconds(double seconds, int decimals) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, seconds);
    return buffer;
}

// Go's time.ParseDuration for the units Docker users write: "30s", "1m30s", "1.5h", "500ms", "0".
std::optional<std::int64_t> parse_go_duration_ns(std::string_view view) {
    std::string text(view);
    if (text == "0") return 0;
    static const std::pair<const char*, double> k_units[] = {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6},
                                                             {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    size_t i = 0;
    if (text.empty()) return std::nullopt;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
        if (start == i) return std::nullopt;
        double value = std::strtod(text.substr(start, i - start).c_str(), nullptr);
        size_t unit_start = i;
        while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
        std::string unit = text.substr(unit_start, i - unit_start);
        double scale = 0;
        for (const auto& [name, factor] : k_units)
            if (unit == name) scale = factor;
        if (scale == 0) return std::nullopt;
        total += value * scale;
    }
    if (total > 9.2e18) return std::nullopt;
    return static_cast<std::int64_t>(std::llround(total));
}


std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    std::uint64_t value = 0;
    if (digits == 0 || !parse_uint64(text.substr(0, digits), value)) return std::nullopt;
    static const std::pair<std::string_view, std::uint64_t> k_units[] = {
        {"", 1},          {"K", 1000},         {"k", 1000},         {"M", 1000'000},     {"G", 1000'000'000},
        {"T", 1000'000'000'000}, {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}, {"Ti", 1ull << 40}};
    for (const auto& [suffix, unit] : k_units) {
        if (text.substr(digits) != suffix) continue;
        if (value > std::numeric_limits<std::uint64_t>::max() / unit) return std::nullopt;
        return value * unit;
    }
    return std::nullopt;
}

}  // namespace kiln
