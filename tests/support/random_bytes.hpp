#pragma once
// Incompressible test data that is the same in every run (xorshift32), so a pushed blob is the same blob.

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::test {

inline std::string pseudo_random_bytes(size_t size, std::uint32_t seed = 2463534242u) {
    std::string bytes(size, '\0');
    std::uint32_t state = seed;
    for (char& byte : bytes) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        byte = static_cast<char>(state);
    }
    return bytes;
}

}  // namespace kiln::test
