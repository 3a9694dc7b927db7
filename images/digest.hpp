#pragma once
// Content addresses: "sha256:<64 lowercase hex>".

#include <compare>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace kiln {

class Digest {
public:
    Digest() = default;
    // Validates the OCI grammar; sha256/sha384/sha512 must be lowercase hex of the right length. Because the
    // encoded part is validated, it is safe to use as a file name.
    static Result<Digest> parse(std::string_view text);
    // The sha256 of `bytes`.
    static Digest of_bytes(std::string_view bytes);
    // Wraps a hex sha256 this process computed itself.
    static Digest from_sha256_hex(std::string hex);

    const std::string& algorithm() const { return m_algorithm; }
    const std::string& encoded() const { return m_encoded; }
    std::string str() const { return m_algorithm + ":" + m_encoded; }
    // "sha256:0123456789ab" for messages.
    std::string short_str() const { return m_algorithm + ":" + m_encoded.substr(0, 12); }
    bool empty() const { return m_encoded.empty(); }

    auto operator<=>(const Digest&) const = default;

private:
    Digest(std::string algorithm, std::string encoded)
        : m_algorithm(std::move(algorithm)), m_encoded(std::move(encoded)) {}
    std::string m_algorithm;
    std::string m_encoded;
};

}  // namespace kiln
