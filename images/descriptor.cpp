#include "images/descriptor.hpp"

#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace kiln {

nlohmann::json Descriptor::to_json() const {
    nlohmann::json json = {{"mediaType", media_type}, {"digest", digest.str()}, {"size", size}};
    if (!urls.empty()) json["urls"] = urls;
    if (!annotations.empty()) json["annotations"] = annotations;
    if (platform) json["platform"] = platform->to_json();
    if (!artifact_type.empty()) json["artifactType"] = artifact_type;
    return json;
}

Result<Descriptor> Descriptor::from_json(const nlohmann::json& json) {
    if (!json.is_object()) return fail("descriptor is not a JSON object");
    Descriptor descriptor;
    try {
        descriptor.media_type = json.at("mediaType").get<std::string>();
        KILN_ASSIGN(descriptor.digest, Digest::parse(json.at("digest").get<std::string>()));
        descriptor.size = json.at("size").get<std::int64_t>();
        if (json.contains("urls")) descriptor.urls = json["urls"].get<std::vector<std::string>>();
        if (json.contains("annotations"))
            descriptor.annotations = json["annotations"].get<std::map<std::string, std::string>>();
        if (json.contains("platform")) {
            KILN_ASSIGN(descriptor.platform, Platform::from_json(json["platform"]));
        }
        if (json.contains("artifactType")) descriptor.artifact_type = json["artifactType"].get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        return fail(str_cat("invalid descriptor: ", e.what()));
    }
    if (descriptor.size < 0) return fail(str_cat("invalid descriptor ", descriptor.digest.str(), ": negative size"));
    return descriptor;
}

Result<nlohmann::json> parse_json_document(std::string_view bytes, std::string_view what) {
    nlohmann::json json = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return fail(str_cat(what, " is not valid JSON"));
    return json;
}

std::string canonical_json(const nlohmann::json& json) {
    return json.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kiln
