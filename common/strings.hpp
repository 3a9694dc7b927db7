#pragma once
// Small string helpers that the standard library of g++ 12 lacks (no std::format).

#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// Concatenates anything streamable: str_cat("layer ", index, " of ", total).
template <class... Args>
std::string str_cat(const Args&... args) {
    std::ostringstream out;
    (out << ... << args);
    return out.str();
}

std::vector<std::string> split(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string_view trim(std::string_view text);
std::string to_lower(std::string_view text);

// Parses a whole decimal string as an unsigned integer; false on anything else or overflow.
bool parse_uint64(std::string_view text, std::uint64_t& value);

// Renders bytes as human-readable size: "12.3 MB".
std::string format_bytes(std::uint64_t bytes);
// Text someone else chose (a registry's error, a helper's stderr), made safe to print: control characters become
// spaces, the ends are trimmed, and more than `limit` characters are cut to `limit` plus "...".
std::string printable_excerpt(std::string_view text, size_t limit = 200);
// Renders a duration in seconds with one decimal: "1.3".
std::string format_seconds(double seconds, int decimals = 1);

// Go's time.ParseDuration for the units Docker and Kaniko users write ("30s", "1m30s", "1.5h", "500ms",
// "336h", "0"), in nanoseconds; nullopt for anything else.
std::optional<std::int64_t> parse_go_duration_ns(std::string_view text);

// A byte count with an optional unit: "512", "64K"/"64k", "2M", "1G", "1T" (powers of 1000) or "64Ki", "2Mi",
// "16Gi", "1Ti" (powers of 1024), as Kubernetes writes quantities. nullopt for anything else or an overflow.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);
// Seconds elapsed on the steady clock since `start`, for log lines.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace kiln
