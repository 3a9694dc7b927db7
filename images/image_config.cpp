#include "images/image_config.hpp"

#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "images/descriptor.hpp"

namespace kiln {
namespace {

using nlohmann::json;

std::optional<std::vector<std::string>> optional_strings(const json& object, const char* key) {
    if (!object.contains(key) || object[key].is_null()) return std::nullopt;
    return object[key].get<std::vector<std::string>>();
}

std::set<std::string> key_set(const json& object, const char* key) {
    std::set<std::string> keys;
    if (!object.contains(key) || object[key].is_null()) return keys;
    if (!object[key].is_object()) throw json::type_error::create(302, std::string(key) + " must be an object", nullptr);
    for (const auto& [name, value] : object[key].items()) keys.insert(name);
    return keys;
}

// A number of Docker's int64 or int fields as Go's encoding/json reads it: absent or null is 0, anything but
// an integer that fits is a type error (converting an out-of-range float would be undefined behaviour).
template <class T>
T integer_member(const json& object, const char* key) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) return T{};
    if (found->is_number_unsigned()) {
        if (found->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
            return static_cast<T>(found->get<std::uint64_t>());
    } else if (found->is_number_integer()) {
        std::int64_t value = found->get<std::int64_t>();
        if (value >= std::numeric_limits<T>::min() && value <= std::numeric_limits<T>::max())
            return static_cast<T>(value);
    }
    throw json::type_error::create(302, std::string(key) + " must be an integer in range", nullptr);
}

json key_object(const std::set<std::string>& keys) {
    json object = json::object();
    for (const std::string& key : keys) object[key] = json::object();
    return object;
}

// Throws json::type_error for a field of the wrong type, which the caller reports.
RunConfig parse_run_config(const json& object) {
    RunConfig config;
    if (object.is_null()) return config;
    if (!object.is_object()) throw json::type_error::create(302, "config must be an object", nullptr);
    if (object.contains("User") && !object["User"].is_null()) config.user = object["User"].get<std::string>();
    config.exposed_ports = key_set(object, "ExposedPorts");
    if (object.contains("Env") && !object["Env"].is_null()) config.env = object["Env"].get<std::vector<std::string>>();
    config.entrypoint = optional_strings(object, "Entrypoint");
    config.cmd = optional_strings(object, "Cmd");
    config.volumes = key_set(object, "Volumes");
    if (object.contains("WorkingDir") && !object["WorkingDir"].is_null())
        config.working_dir = object["WorkingDir"].get<std::string>();
    if (object.contains("Labels") && !object["Labels"].is_null())
        config.labels = object["Labels"].get<std::map<std::string, std::string>>();
    if (object.contains("StopSignal") && !object["StopSignal"].is_null())
        config.stop_signal = object["StopSignal"].get<std::string>();
    config.shell = optional_strings(object, "Shell");
    if (object.contains("OnBuild") && !object["OnBuild"].is_null())
        config.on_build = object["OnBuild"].get<std::vector<std::string>>();
    if (object.contains("Healthcheck") && !object["Healthcheck"].is_null()) {
        const json& health = object["Healthcheck"];
        if (!health.is_object()) throw json::type_error::create(302, "Healthcheck must be an object", nullptr);
        HealthConfig healthcheck;
        if (health.contains("Test") && !health["Test"].is_null())
            healthcheck.test = health["Test"].get<std::vector<std::string>>();
        healthcheck.interval_ns = integer_member<std::int64_t>(health, "Interval");
        healthcheck.timeout_ns = integer_member<std::int64_t>(health, "Timeout");
        healthcheck.start_period_ns = integer_member<std::int64_t>(health, "StartPeriod");
        healthcheck.start_interval_ns = integer_member<std::int64_t>(health, "StartInterval");
        healthcheck.retries = integer_member<int>(health, "Retries");
        config.healthcheck = healthcheck;
    }
    config.args_escaped = object.value("ArgsEscaped", false);
    return config;
}

json serialize_run_config(const RunConfig& config) {
    json object = json::object();
    if (!config.user.empty()) object["User"] = config.user;
    if (!config.exposed_ports.empty()) object["ExposedPorts"] = key_object(config.exposed_ports);
    if (!config.env.empty()) object["Env"] = config.env;
    if (config.entrypoint) object["Entrypoint"] = *config.entrypoint;
    if (config.cmd) object["Cmd"] = *config.cmd;
    if (!config.volumes.empty()) object["Volumes"] = key_object(config.volumes);
    if (!config.working_dir.empty()) object["WorkingDir"] = config.working_dir;
    if (!config.labels.empty()) object["Labels"] = config.labels;
    if (!config.stop_signal.empty()) object["StopSignal"] = config.stop_signal;
    if (config.shell) object["Shell"] = *config.shell;
    if (!config.on_build.empty()) object["OnBuild"] = config.on_build;
    if (config.healthcheck) {
        const HealthConfig& health = *config.healthcheck;
        json health_object = {{"Test", health.test}};
        if (health.interval_ns) health_object["Interval"] = health.interval_ns;
        if (health.timeout_ns) health_object["Timeout"] = health.timeout_ns;
        if (health.start_period_ns) health_object["StartPeriod"] = health.start_period_ns;
        if (health.start_interval_ns) health_object["StartInterval"] = health.start_interval_ns;
        if (health.retries) health_object["Retries"] = health.retries;
        object["Healthcheck"] = health_object;
    }
    if (config.args_escaped) object["ArgsEscaped"] = true;
    return object;
}

}  // namespace

std::optional<std::string> RunConfig::env_value(std::string_view name) const {
    for (const std::string& entry : env) {
        size_t equals = entry.find('=');
        if (std::string_view(entry).substr(0, equals) == name)
            return equals == std::string::npos ? std::string() : entry.substr(equals + 1);
    }
    return std::nullopt;
}

void RunConfig::set_env(std::string_view name, std::string_view value) {
    std::string entry = str_cat(name, "=", value);
    for (std::string& existing : env) {
        if (std::string_view(existing).substr(0, existing.find('=')) == name) {
            existing = std::move(entry);
            return;
        }
    }
    env.push_back(std::move(entry));
}

Result<ImageConfig> ImageConfig::parse(std::string_view bytes) {
    KILN_ASSIGN(json document, parse_json_document(bytes, "image config"));
    if (!document.is_object()) return fail("image config is not a JSON object");
    ImageConfig config;
    try {
        config.created = document.value("created", "");
        config.author = document.value("author", "");
        config.architecture = document.value("architecture", "");
        config.os = document.value("os", "");
        config.variant = document.value("variant", "");
        config.os_version = document.value("os.version", "");
        if (document.contains("os.features") && !document["os.features"].is_null())
            config.os_features = document["os.features"].get<std::vector<std::string>>();
        if (document.contains("config")) config.config = parse_run_config(document["config"]);
        if (!document.contains("rootfs") || !document["rootfs"].is_object()) return fail("image config has no rootfs");
        const json& rootfs = document["rootfs"];
        if (rootfs.value("type", "") != "layers")
            return fail(str_cat("image config rootfs.type is \"", rootfs.value("type", ""), "\", not \"layers\""));
        if (rootfs.contains("diff_ids") && !rootfs["diff_ids"].is_null()) {
            if (!rootfs["diff_ids"].is_array()) return fail("image config rootfs.diff_ids is not an array");
            for (const auto& diff_id : rootfs["diff_ids"]) {
                KILN_ASSIGN(Digest digest, Digest::parse(diff_id.get<std::string>()));
                config.diff_ids.push_back(std::move(digest));
            }
        }
        if (document.contains("history") && !document["history"].is_null()) {
            // Dropping a malformed history would silently rewrite the image's story; refuse it instead.
            if (!document["history"].is_array()) return fail("image config history is not an array");
            for (const auto& entry : document["history"]) {
                History history;
                history.created = entry.value("created", "");
                history.created_by = entry.value("created_by", "");
                history.author = entry.value("author", "");
                history.comment = entry.value("comment", "");
                history.empty_layer = entry.value("empty_layer", false);
                config.history.push_back(std::move(history));
            }
        }
    } catch (const json::exception& e) {
        return fail(str_cat("invalid image config: ", e.what()));
    }
    return config;
}

std::string ImageConfig::serialize() const {
    json document = {{"architecture", architecture}, {"os", os}};
    if (!created.empty()) document["created"] = created;
    if (!author.empty()) document["author"] = author;
    if (!variant.empty()) document["variant"] = variant;
    if (!os_version.empty()) document["os.version"] = os_version;
    if (!os_features.empty()) document["os.features"] = os_features;
    document["config"] = serialize_run_config(config);
    json ids = json::array();
    for (const Digest& diff_id : diff_ids) ids.push_back(diff_id.str());
    document["rootfs"] = {{"type", "layers"}, {"diff_ids", ids}};
    if (!history.empty()) {
        json entries = json::array();
        for (const History& entry : history) {
            json object = json::object();
            if (!entry.created.empty()) object["created"] = entry.created;
            if (!entry.created_by.empty()) object["created_by"] = entry.created_by;
            if (!entry.author.empty()) object["author"] = entry.author;
            if (!entry.comment.empty()) object["comment"] = entry.comment;
            if (entry.empty_layer) object["empty_layer"] = true;
            entries.push_back(std::move(object));
        }
        document["history"] = std::move(entries);
    }
    return canonical_json(document);
}

std::string format_rfc3339(std::int64_t unix_seconds) {
    std::time_t time = static_cast<std::time_t>(unix_seconds);
    std::tm utc{};
    ::gmtime_r(&time, &utc);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buffer;
}

}  // namespace kiln
