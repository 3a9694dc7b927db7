#pragma once
// What every benchmark program needs: die with a message naming the program, unwrap Results, time a body.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "common/error.hpp"

namespace kiln::bench {

// Set by main() before anything can fail: "kiln_layer_bench".
inline const char* g_program = "kiln bench";

[[noreturn]] inline void die(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", g_program, message.c_str());
    std::exit(1);
}

template <class T>
T check(Result<T> result, const std::string& what) {
    if (!result) die(what + ": " + result.error().message());
    return std::move(*result);
}

inline void check(Status status, const std::string& what) {
    if (!status) die(what + ": " + status.error().message());
}

inline double seconds_of(const std::function<void()>& body) {
    auto start = std::chrono::steady_clock::now();
    body();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace kiln::bench
