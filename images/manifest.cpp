#include "images/manifest.hpp"

#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "images/media_type.hpp"

namespace kiln {

Result<Manifest> Manifest::parse(std::string_view bytes) {
    KILN_ASSIGN(nlohmann::json json, parse_json_document(bytes, "manifest"));
    if (!json.is_object()) return fail("manifest is not a JSON object");
    Manifest manifest;
    try {
        // Only the integer 2: reading a float such as 2e63 into an int would be undefined behaviour, and a
        // large integer would wrap (Go's encoding/json, which registries use, refuses both).
        auto version = json.find("schemaVersion");
        if (version == json.end() || !version->is_number_integer() || *version != 2)
            return fail(str_cat("unsupported manifest schemaVersion ",
                                version == json.end() ? "0" : version->dump()));
        manifest.schema_version = 2;
        manifest.media_type = json.value("mediaType", "");
        if (!manifest.media_type.empty() && !is_manifest_media_type(manifest.media_type))
            return fail(str_cat("not an image manifest: mediaType ", manifest.media_type));
        manifest.artifact_type = json.value("artifactType", "");
        if (json.contains("artifactType") && !is_valid_media_type(manifest.artifact_type))
            return fail(str_cat("manifest artifactType \"", manifest.artifact_type, "\" is not type/subtype"));
        if (!json.contains("config")) return fail("manifest has no config");
        KILN_ASSIGN(manifest.config, Descriptor::from_json(json["config"]));
        if (json.contains("layers")) {
            if (!json["layers"].is_array()) return fail("manifest layers is not an array");
            for (const auto& layer : json["layers"]) {
                KILN_ASSIGN(Descriptor descriptor, Descriptor::from_json(layer));
                manifest.layers.push_back(std::move(descriptor));
            }
        }
        if (json.contains("subject")) {
            KILN_ASSIGN(manifest.subject, Descriptor::from_json(json["subject"]));
        }
        if (json.contains("annotations"))
            manifest.annotations = json["annotations"].get<std::map<std::string, std::string>>();
    } catch (const nlohmann::json::exception& e) {
        return fail(str_cat("invalid manifest: ", e.what()));
    }
    return manifest;
}

std::string Manifest::serialize() const {
    nlohmann::json json = {{"schemaVersion", schema_version}, {"config", config.to_json()}};
    if (!media_type.empty()) json["mediaType"] = media_type;
    if (!artifact_type.empty()) json["artifactType"] = artifact_type;
    json["layers"] = nlohmann::json::array();
    for (const Descriptor& layer : layers) json["layers"].push_back(layer.to_json());
    if (subject) json["subject"] = subject->to_json();
    if (!annotations.empty()) json["annotations"] = annotations;
    return canonical_json(json);
}

}  // namespace kiln
