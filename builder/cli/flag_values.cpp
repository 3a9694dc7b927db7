#include "builder/cli/flag_values.hpp"

#include <cstdlib>
#include <optional>

#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

Result<bool> parse_bool(std::string_view flag, const std::string& value) {
    std::string lower = to_lower(value);
    if (lower == "true" || lower == "1" || lower.empty()) return true;
    if (lower == "false" || lower == "0") return false;
    return fail(str_cat("--", flag, ": expected true or false, got \"", value, "\""));
}

Result<std::pair<std::string, std::string>> parse_key_value(std::string_view flag, const std::string& value) {
    size_t equals = value.find('=');
    if (equals == 0 || value.empty()) return fail(str_cat("--", flag, ": expected KEY=VALUE, got \"", value, "\""));
    if (equals == std::string::npos) return std::pair{value, std::string()};
    return std::pair{value.substr(0, equals), value.substr(equals + 1)};
}

Result<int> parse_int(std::string_view flag, const std::string& value) {
    std::string_view digits = value;
    bool negative = !digits.empty() && digits[0] == '-';
    if (negative) digits.remove_prefix(1);
    std::uint64_t number = 0;
    if (!parse_uint64(digits, number) || number > 1000000)
        return fail(str_cat("--", flag, ": expected a number, got \"", value, "\""));
    return negative ? -static_cast<int>(number) : static_cast<int>(number);
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view flag, const std::string& value, bool zero_allowed,
                                                std::string_view expected) {
    std::optional<std::int64_t> nanoseconds = parse_go_duration_ns(value);
    if (!nanoseconds || *nanoseconds < 0 || (*nanoseconds == 0 && !zero_allowed))
        return fail(str_cat("--", flag, ": expected ", expected, ", got \"", value, "\""));
    return std::chrono::nanoseconds(*nanoseconds);
}

Apply set_string(std::string BuildOptions::*member) {
    return [member](BuildOptions& options, const std::string& value) -> Status {
        options.*member = value;
        return {};
    };
}

Apply append_string(std::vector<std::string> BuildOptions::*member) {
    return [member](BuildOptions& options, const std::string& value) -> Status {
        (options.*member).push_back(value);
        return {};
    };
}

Apply set_bool(bool BuildOptions::*member, std::string_view flag) {
    return [member, flag](BuildOptions& options, const std::string& value) -> Status {
        KILN_ASSIGN(options.*member, parse_bool(flag, value));
        return {};
    };
}

Status apply_build_arg(BuildOptions& options, const std::string& value) {
    KILN_ASSIGN(auto pair, parse_key_value("build-arg", value));
    // Like Kaniko and docker: a bare NAME takes its value from kiln's own environment.
    if (value.find('=') == std::string::npos) {
        const char* from_env = std::getenv(pair.first.c_str());
        if (!from_env) return fail(str_cat("--build-arg ", pair.first, ": no value given and $", pair.first, " is unset"));
        pair.second = from_env;
    }
    options.build_args.push_back(std::move(pair));
    return {};
}

Status apply_verbosity(BuildOptions& options, const std::string& value) {
    std::string level = to_lower(value);
    if (level == "trace" || level == "debug")
        options.verbosity = LogLevel::debug;
    else if (level == "info")
        options.verbosity = LogLevel::info;
    else if (level == "warn" || level == "warning")
        options.verbosity = LogLevel::warn;
    else if (level == "error" || level == "fatal" || level == "panic")
        options.verbosity = LogLevel::error;
    else
        return fail(str_cat("--verbosity: unknown level \"", value, "\" (trace, debug, info, warn, error)"));
    return {};
}

Status apply_compression(BuildOptions& options, const std::string& value) {
    std::string name = to_lower(value);
    if (name == "gzip")
        options.compression = Compression::gzip;
    else if (name == "zstd")
        options.compression = Compression::zstd;
    else if (name == "none" || name == "uncompressed")
        options.compression = Compression::none;
    else
        return fail(str_cat("--compression: expected gzip, zstd or none, got \"", value, "\""));
    return {};
}

Status apply_snapshot_mode(BuildOptions& options, const std::string& value) {
    KILN_ASSIGN(options.snapshot_mode, parse_snapshot_mode(value));
    return {};
}

Status apply_log_format(BuildOptions& options, const std::string& value) {
    if (value == "text")
        options.log_format = LogFormat::text;
    else if (value == "color" || value == "colour")
        options.log_format = LogFormat::color;
    else if (value == "json")
        options.log_format = LogFormat::json;
    else
        return fail(str_cat("--log-format: expected text, color or json, got \"", value, "\""));
    return {};
}

Status apply_snapshotter(BuildOptions& options, const std::string& value) {
    std::string name = to_lower(value);
    if (name == "auto")
        options.snapshotter = SnapshotterKind::automatic;
    else if (name == "overlay")
        options.snapshotter = SnapshotterKind::overlay;
    else if (name == "walk")
        options.snapshotter = SnapshotterKind::walk;
    else
        return fail(str_cat("--snapshotter: expected auto, overlay or walk, got \"", value, "\""));
    return {};
}

Status apply_ignore_path(BuildOptions& options, const std::string& value) {
    // Kaniko takes the path in the image's namespace; "/" would leave every layer empty.
    if (clean_path(value).empty())
        return fail(str_cat("--ignore-path: \"", value, "\" names the whole filesystem"));
    options.ignore_paths.push_back(value);
    return {};
}

Status apply_format(BuildOptions& options, const std::string& value) {
    std::string name = to_lower(value);
    if (name == "oci")
        options.manifest_format = ManifestFormat::oci;
    else if (name == "docker")
        options.manifest_format = ManifestFormat::docker;
    else
        return fail(str_cat("--format: expected oci or docker, got \"", value, "\""));
    return {};
}

}  // namespace kiln
