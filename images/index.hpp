#pragma once
// An image index (OCI) or manifest list (Docker): one manifest per platform.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "images/descriptor.hpp"

namespace kiln {

struct Index {
    int schema_version = 2;
    std::string media_type;
    std::string artifact_type;
    std::vector<Descriptor> manifests;
    std::optional<Descriptor> subject;
    std::map<std::string, std::string> annotations;

    // Parses and validates: schemaVersion 2, an index mediaType when one is given, valid descriptors.
    static Result<Index> parse(std::string_view bytes);
    // The canonical form (see canonical_json).
    std::string serialize() const;
    bool operator==(const Index&) const = default;

    // The first manifest whose platform satisfies `wanted`; the error lists the platforms the index offers.
    Result<Descriptor> select(const Platform& wanted) const;
};

}  // namespace kiln
