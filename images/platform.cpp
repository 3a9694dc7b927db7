#include "images/platform.hpp"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace kiln {
namespace {

std::string normalize_architecture(std::string_view arch) {
    std::string lower = to_lower(arch);
    if (lower == "x86_64" || lower == "x86-64") return "amd64";
    if (lower == "aarch64") return "arm64";
    if (lower == "i386" || lower == "i686") return "386";
    return lower;
}

std::string normalize_variant(const std::string& architecture, std::string_view variant) {
    std::string lower = to_lower(variant);
    if (architecture == "arm64" && (lower == "v8" || lower == "8")) return "";
    if (architecture == "amd64" && lower == "v1") return "";
    if (architecture == "arm" && !lower.empty() && lower[0] != 'v') return "v" + lower;
    return lower;
}

}  // namespace

Result<Platform> Platform::parse(std::string_view text) {
    std::vector<std::string> parts = split(text, '/');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        return fail(str_cat("invalid platform \"", text, "\": expected os/arch[/variant]"));
    Platform platform;
    platform.os = to_lower(parts[0]);
    platform.architecture = normalize_architecture(parts[1]);
    if (parts.size() == 3) platform.variant = to_lower(parts[2]);
    return platform;
}

std::string Platform::str() const {
    std::string text = os + "/" + architecture;
    if (!variant.empty()) text += "/" + variant;
    return text;
}

bool Platform::satisfies(const Platform& wanted) const {
    if (to_lower(os) != to_lower(wanted.os)) return false;
    std::string arch = normalize_architecture(architecture);
    if (arch != normalize_architecture(wanted.architecture)) return false;
    std::string wanted_variant = normalize_variant(arch, wanted.variant);
    return wanted_variant.empty() || normalize_variant(arch, variant) == wanted_variant;
}

nlohmann::json Platform::to_json() const {
    nlohmann::json json = {{"os", os}, {"architecture", architecture}};
    if (!variant.empty()) json["variant"] = variant;
    if (!os_version.empty()) json["os.version"] = os_version;
    if (!os_features.empty()) json["os.features"] = os_features;
    return json;
}

Result<Platform> Platform::from_json(const nlohmann::json& json) {
    if (!json.is_object()) return fail("platform is not a JSON object");
    Platform platform;
    try {
        platform.os = json.at("os").get<std::string>();
        platform.architecture = json.at("architecture").get<std::string>();
        if (json.contains("variant")) platform.variant = json["variant"].get<std::string>();
        if (json.contains("os.version")) platform.os_version = json["os.version"].get<std::string>();
        if (json.contains("os.features")) platform.os_features = json["os.features"].get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
        return fail(str_cat("invalid platform: ", e.what()));
    }
    return platform;
}

Platform host_platform() {
    utsname name{};
    ::uname(&name);
    Platform platform{.os = "linux", .architecture = normalize_architecture(name.machine)};
    if (platform.architecture == "armv7l") platform = {.os = "linux", .architecture = "arm", .variant = "v7"};
    return platform;
}

}  // namespace kiln
