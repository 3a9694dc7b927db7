#include "images/index.hpp"

#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "images/media_type.hpp"

namespace kiln {

Result<Index> Index::parse(std::string_view bytes) {
    KILN_ASSIGN(nlohmann::json json, parse_json_document(bytes, "image index"));
    if (!json.is_object()) return fail("image index is not a JSON object");
    Index index;
    try {
        // Only the integer 2, as in Manifest::parse.
        auto version = json.find("schemaVersion");
        if (version == json.end() || !version->is_number_integer() || *version != 2)
            return fail(str_cat("unsupported index schemaVersion ",
                                version == json.end() ? "0" : version->dump()));
        index.schema_version = 2;
        index.media_type = json.value("mediaType", "");
        if (!index.media_type.empty() && !is_index_media_type(index.media_type))
            return fail(str_cat("not an image index: mediaType ", index.media_type));
        index.artifact_type = json.value("artifactType", "");
        if (json.contains("artifactType") && !is_valid_media_type(index.artifact_type))
            return fail(str_cat("image index artifactType \"", index.artifact_type, "\" is not type/subtype"));
        if (!json.contains("manifests") || !json["manifests"].is_array()) return fail("image index has no manifests");
        for (const auto& entry : json["manifests"]) {
            KILN_ASSIGN(Descriptor descriptor, Descriptor::from_json(entry));
            index.manifests.push_back(std::move(descriptor));
        }
        if (json.contains("subject")) {
            KILN_ASSIGN(index.subject, Descriptor::from_json(json["subject"]));
        }
        if (json.contains("annotations"))
            index.annotations = json["annotations"].get<std::map<std::string, std::string>>();
    } catch (const nlohmann::json::exception& e) {
        return fail(str_cat("invalid image index: ", e.what()));
    }
    return index;
}

std::string Index::serialize() const {
    nlohmann::json json = {{"schemaVersion", schema_version}, {"manifests", nlohmann::json::array()}};
    if (!media_type.empty()) json["mediaType"] = media_type;
    if (!artifact_type.empty()) json["artifactType"] = artifact_type;
    for (const Descriptor& manifest : manifests) json["manifests"].push_back(manifest.to_json());
    if (subject) json["subject"] = subject->to_json();
    if (!annotations.empty()) json["annotations"] = annotations;
    return canonical_json(json);
}

Result<Descriptor> Index::select(const Platform& wanted) const {
    std::vector<std::string> offered;
    for (const Descriptor& manifest : manifests) {
        if (!manifest.platform) continue;
        if (manifest.platform->satisfies(wanted) && is_manifest_media_type(manifest.media_type)) return manifest;
        offered.push_back(manifest.platform->str());
    }
    return fail(str_cat("no manifest for platform ", wanted.str(), " in the index (it has: ",
                        offered.empty() ? std::string("none") : join(offered, ", "), ")"));
}

}  // namespace kiln
