#pragma once
// Standard padded base64 (RFC 4648 §4): Basic credentials, config.json "auth" fields, descriptor "data".

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

std::string base64_encode(std::string_view bytes);

// Decodes padded standard base64; nullopt for anything else (wrong length, stray characters, bad padding).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace kiln
