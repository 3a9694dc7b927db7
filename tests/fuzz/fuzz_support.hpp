#pragma once
// What every fuzz harness shares. A harness calls the real public API with the input, ignores the errors it
// returns (bad input is expected to fail), and crashes only on a finding: a sanitizer report, an exception
// that escapes (the libraries return Result, so none should), or a broken promise checked with require().

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "common/log.hpp"

// libFuzzer's entry point; the fuzzer executables and the regression driver (regression_main.cpp) both call
// it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size);

namespace kiln::fuzz {

inline std::string_view as_text(const std::uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// The libraries warn about hostile input through the log sink; at thousands of inputs a second the default
// sink (stderr) would be most of the work.
inline void quiet_logs() {
    static const bool installed = [] {
        set_log_sink([](LogLevel, std::string_view) {});
        return true;
    }();
    (void)installed;
}

// A promise the code under test makes (a round trip, a bound) that the input broke: crash, so that libFuzzer
// keeps the input as a finding.
inline void require(bool holds, const char* promise) {
    if (holds) return;
    std::fprintf(stderr, "fuzz: broken promise: %s\n", promise);
    std::abort();
}

// (before, after) the first `separator`; `after` is empty when there is none.
inline std::pair<std::string_view, std::string_view> split_once(std::string_view text, char separator) {
    size_t at = text.find(separator);
    if (at == std::string_view::npos) return {text, {}};
    return {text.substr(0, at), text.substr(at + 1)};
}

// The lines of `text`, without their "\n".
inline std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto [line, rest] = split_once(text, '\n');
        lines.push_back(line);
        text = rest;
    }
    return lines;
}

}  // namespace kiln::fuzz
