#pragma once
// An image manifest (OCI or Docker schema 2): the config and the layers, in order.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "images/descriptor.hpp"

namespace kiln {

struct Manifest {
    int schema_version = 2;
    std::string media_type;
    std::string artifact_type;
    Descriptor config;
    std::vector<Descriptor> layers;
    std::optional<Descriptor> subject;
    std::map<std::string, std::string> annotations;

    // Parses and validates: schemaVersion 2, a manifest mediaType when one is given, a config, and layer
    // descriptors. An empty layer list is accepted: Docker and registries accept metadata-only images.
    static Result<Manifest> parse(std::string_view bytes);
    // The canonical form (see canonical_json); "layers" is always present.
    std::string serialize() const;
    bool operator==(const Manifest&) const = default;
};

}  // namespace kiln
