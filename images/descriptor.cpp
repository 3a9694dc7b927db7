#include "images/descriptor.hpp"

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/strings.hpp"
#include "images/media_type.hpp"

namespace kiln {
namespace {

// Padded standard base64, as the OCI schema's "data" requires.
bool valid_base64(std::string_view text) { return base64_decode(text).has_value(); }

}  // namespace

nlohmann::json Descriptor::to_json() const {
    nlohmann::json json = {{"mediaType", media_type}, {"digest", digest.str()}, {"size", size}};
    if (!urls.empty()) json["urls"] = urls;
    if (!annotations.empty()) json["annotations"] = annotations;
    if (platform) json["platform"] = platform->to_json();
    if (!artifact_type.empty()) json["artifactType"] = artifact_type;
    if (!data.empty()) json["data"] = data;
    return json;
}

Result<Descriptor> Descriptor::from_json(const nlohmann::json& json) {
    if (!json.is_object()) return fail("descriptor is not a JSON object");
    Descriptor descriptor;
    try {
        descriptor.media_type = json.at("mediaType").get<std::string>();
        KILN_ASSIGN(descriptor.digest, Digest::parse(json.at("digest").get<std::string>()));
        const nlohmann::json& size = json.at("size");
        // A float would convert silently; the schema wants an integer.
        if (!size.is_number_integer()) return fail("invalid descriptor: size is not an integer");
        descriptor.size = size.get<std::int64_t>();
        if (json.contains("urls")) descriptor.urls = json["urls"].get<std::vector<std::string>>();
        if (json.contains("annotations"))
            descriptor.annotations = json["annotations"].get<std::map<std::string, std::string>>();
        if (json.contains("platform")) {
            KILN_ASSIGN(descriptor.platform, Platform::from_json(json["platform"]));
        }
        if (json.contains("artifactType")) descriptor.artifact_type = json["artifactType"].get<std::string>();
        if (json.contains("data")) descriptor.data = json["data"].get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        return fail(str_cat("invalid descriptor: ", e.what()));
    }
    if (!is_valid_media_type(descriptor.media_type))
        return fail(str_cat("invalid descriptor ", descriptor.digest.str(), ": mediaType \"", descriptor.media_type,
                            "\" is not type/subtype"));
    if (json.contains("artifactType") && !is_valid_media_type(descriptor.artifact_type))
        return fail(str_cat("invalid descriptor ", descriptor.digest.str(), ": artifactType \"",
                            descriptor.artifact_type, "\" is not type/subtype"));
    // An unsigned value above INT64_MAX comes out negative too.
    if (descriptor.size < 0) return fail(str_cat("invalid descriptor ", descriptor.digest.str(), ": negative size"));
    if (!valid_base64(descriptor.data))
        return fail(str_cat("invalid descriptor ", descriptor.digest.str(), ": data is not padded base64"));
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
