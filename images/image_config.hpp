#pragma once
// The image configuration: how to run the image, its rootfs diffIDs and its history.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "images/digest.hpp"

namespace kiln {

struct HealthConfig {
    std::vector<std::string> test;  // ["NONE"], ["CMD", …] or ["CMD-SHELL", "…"]
    std::int64_t interval_ns = 0;
    std::int64_t timeout_ns = 0;
    std::int64_t start_period_ns = 0;
    std::int64_t start_interval_ns = 0;
    int retries = 0;

    bool operator==(const HealthConfig&) const = default;
};

// The "config" object: what a container of this image runs with.
struct RunConfig {
    std::string user;
    std::set<std::string> exposed_ports;  // "80/tcp"
    std::vector<std::string> env;         // "K=V", in order
    std::optional<std::vector<std::string>> entrypoint;
    std::optional<std::vector<std::string>> cmd;
    std::set<std::string> volumes;
    std::string working_dir;
    std::map<std::string, std::string> labels;
    std::string stop_signal;
    std::optional<std::vector<std::string>> shell;
    std::vector<std::string> on_build;
    std::optional<HealthConfig> healthcheck;
    bool args_escaped = false;

    // The value of an environment variable, if set.
    std::optional<std::string> env_value(std::string_view name) const;
    // Sets a variable, keeping its position when it already exists.
    void set_env(std::string_view name, std::string_view value);

    bool operator==(const RunConfig&) const = default;
};

struct History {
    std::string created;  // RFC 3339
    std::string created_by;
    std::string author;
    std::string comment;
    bool empty_layer = false;

    bool operator==(const History&) const = default;
};

struct ImageConfig {
    std::string created;  // RFC 3339, empty when unknown
    std::string author;
    std::string architecture;
    std::string os;
    std::string variant;
    std::string os_version;
    std::vector<std::string> os_features;
    RunConfig config;
    std::vector<Digest> diff_ids;
    std::vector<History> history;

    // Parses and validates an image config (rootfs.type must be "layers"). Unknown fields are dropped.
    static Result<ImageConfig> parse(std::string_view bytes);
    // The canonical form (see canonical_json); rootfs always lists diff_ids, even none.
    std::string serialize() const;
    bool operator==(const ImageConfig&) const = default;
};

// Formats a time as RFC 3339 UTC with second precision: "2026-11-22T10:00:00Z".
std::string format_rfc3339(std::int64_t unix_seconds);

}  // namespace kiln
