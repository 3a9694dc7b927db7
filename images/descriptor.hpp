#pragma once
// A content descriptor: what a manifest or index says about a blob.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "images/digest.hpp"
#include "images/platform.hpp"

namespace kiln {

struct Descriptor {
    std::string media_type;
    Digest digest;
    std::int64_t size = 0;
    std::vector<std::string> urls;
    std::map<std::string, std::string> annotations;
    std::optional<Platform> platform;
    std::string artifact_type;
    // Embedded content, as the padded standard base64 text of the document (kept verbatim, never decoded).
    std::string data;

    nlohmann::json to_json() const;
    // Validates the mediaType (and artifactType) shape, the digest, a non-negative integer size and the base64 of
    // data.
    static Result<Descriptor> from_json(const nlohmann::json& json);
    bool operator==(const Descriptor&) const = default;
};

// Parses untrusted JSON, naming `what` in the error.
Result<nlohmann::json> parse_json_document(std::string_view bytes, std::string_view what);

// The canonical form kiln writes every JSON document in: sorted keys, no insignificant whitespace.
std::string canonical_json(const nlohmann::json& json);

}  // namespace kiln
