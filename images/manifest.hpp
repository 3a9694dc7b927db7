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

    // Parses and validates: schemaVersion 2, a config, and layer descriptors.
    static Result<Manifest> parse(std::string_view bytes);
    std::string serialize() const;
};

}  // namespace kiln
