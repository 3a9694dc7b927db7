#pragma once
// An image index (OCI) or manifest list (Docker): one manifest per platform.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "images/descriptor.hpp"

namespace kiln {

struct Index {
    int schema_version = 2;
    std::string media_type;
    std::vector<Descriptor> manifests;
    std::map<std::string, std::string> annotations;

    static Result<Index> parse(std::string_view bytes);
    std::string serialize() const;

    // The first manifest whose platform satisfies `wanted`; the error lists the platforms the index offers.
    Result<Descriptor> select(const Platform& wanted) const;
};

}  // namespace kiln
