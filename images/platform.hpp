#pragma once
// The platform an image runs on: os/architecture[/variant].

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.hpp"

namespace kiln {

struct Platform {
    std::string os;
    std::string architecture;
    std::string variant;
    std::string os_version;
    std::vector<std::string> os_features;

    // Parses "linux/amd64", "linux/arm64/v8", "linux/arm/v7"; architecture names are normalised the way
    // containerd does ("aarch64" → arm64, "x86_64" → amd64).
    static Result<Platform> parse(std::string_view text);
    // "linux/arm64/v8".
    std::string str() const;
    // True when an image for `this` runs on `wanted`: same os and architecture, and the same variant when
    // `wanted` names one (arm64's implicit v8 and amd64's v1 count as no variant).
    bool satisfies(const Platform& wanted) const;

    nlohmann::json to_json() const;
    static Result<Platform> from_json(const nlohmann::json& json);
    // Field-wise, without normalisation: "aarch64" and "arm64" differ here (use satisfies()).
    bool operator==(const Platform&) const = default;
};

// The platform of the machine kiln runs on.
Platform host_platform();

}  // namespace kiln
