#include "builder/output.hpp"

#include <chrono>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/docker_archive.hpp"
#include "images/oci_layout.hpp"

namespace kiln {
namespace {

std::string tag_of(const Reference& reference) { return reference.tag().empty() ? "latest" : reference.tag(); }

}  // namespace

Result<std::vector<Reference>> parse_destinations(const BuildOptions& options) {
    std::vector<Reference> destinations;
    for (const std::string& text : options.destinations) {
        KILN_ASSIGN(Reference reference, with_context(Reference::parse(text), "--destination"));
        destinations.push_back(std::move(reference));
    }
    return destinations;
}

Status write_outputs(const BuildOptions& options, const std::vector<Reference>& destinations, const Image& image,
                     const ImageDocuments& documents, RegistryClient* push_client, const PushOptions& push) {
    const std::string digest = documents.manifest.digest.str();
    if (!options.tar_path.empty()) {
        std::vector<std::string> tags;
        for (const Reference& destination : destinations)
            if (!destination.tag().empty()) tags.push_back(destination.name() + ":" + destination.tag());
        KILN_TRY_CONTEXT(write_docker_archive(options.tar_path, image, documents, tags), "--tar-path " + options.tar_path);
    }
    if (!options.oci_layout_path.empty()) {
        std::string ref_name = destinations.empty() ? "latest" : tag_of(destinations.front());
        KILN_TRY_CONTEXT(write_oci_layout(options.oci_layout_path, image, documents, ref_name),
                         "--oci-layout-path " + options.oci_layout_path);
    }
    if (!options.no_push) {
        if (!push_client) return fail("internal error: no registry client for pushing");
        KILN_TRY(push_image(*push_client, destinations, image, documents, push));
    }
    if (!options.digest_file.empty()) KILN_TRY_CONTEXT(write_named_file(options.digest_file, digest), "--digest-file");
    if (!options.image_name_with_digest_file.empty()) {
        std::string lines;
        for (const Reference& destination : destinations) lines += destination.name() + "@" + digest + "\n";
        KILN_TRY_CONTEXT(write_named_file(options.image_name_with_digest_file, lines), "--image-name-with-digest-file");
    }
    if (!options.image_name_tag_with_digest_file.empty()) {
        std::string lines;
        for (const Reference& destination : destinations)
            lines += destination.name() + ":" + tag_of(destination) + "@" + digest + "\n";
        KILN_TRY_CONTEXT(write_named_file(options.image_name_tag_with_digest_file, lines),
                         "--image-name-tag-with-digest-file");
    }
    if (!options.image_ref_file.empty() && !destinations.empty())
        KILN_TRY_CONTEXT(write_named_file(options.image_ref_file, destinations.front().name() + "@" + digest),
                         "--image-ref-file");
    if (!options.image_url_file.empty() && !options.destinations.empty())
        KILN_TRY_CONTEXT(write_named_file(options.image_url_file, options.destinations.front()), "--image-url-file");
    return {};
}

}  // namespace kiln
