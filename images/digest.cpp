#include "images/digest.hpp"

#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

bool is_lower_hex(std::string_view text) {
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// algorithm-component := [a-z0-9]+, separated by [+._-]
bool valid_algorithm(std::string_view algorithm) {
    if (algorithm.empty()) return false;
    bool previous_separator = true;
    for (char c : algorithm) {
        bool separator = c == '+' || c == '.' || c == '_' || c == '-';
        bool component = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!separator && !component) return false;
        if (separator && previous_separator) return false;
        previous_separator = separator;
    }
    return !previous_separator;
}

// encoded := [a-zA-Z0-9=_-]+
bool valid_encoded(std::string_view encoded) {
    if (encoded.empty()) return false;
    for (char c : encoded)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return fail(str_cat("invalid digest \"", text, "\": no algorithm"));
    std::string_view algorithm = text.substr(0, colon);
    std::string_view encoded = text.substr(colon + 1);
    if (!valid_algorithm(algorithm) || !valid_encoded(encoded))
        return fail(str_cat("invalid digest \"", text, "\""));
    size_t expected_length = algorithm == "sha256" ? 64 : algorithm == "sha384" ? 96 : algorithm == "sha512" ? 128 : 0;
    if (expected_length && (encoded.size() != expected_length || !is_lower_hex(encoded)))
        return fail(str_cat("invalid digest \"", text, "\": ", algorithm, " needs ", expected_length,
                            " lowercase hex characters"));
    return Digest(std::string(algorithm), std::string(encoded));
}

Digest Digest::of_bytes(std::string_view bytes) { return Digest("sha256", sha256_hex(bytes)); }

Digest Digest::from_sha256_hex(std::string hex) { return Digest("sha256", std::move(hex)); }

}  // namespace kiln
