// RegistryClient's manifest operations: fetch (verified), resolve through an index, push.
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/index.hpp"
#include "images/media_type.hpp"
#include "registry/api_error.hpp"
#include "registry/client.hpp"
#include "registry/client_internal.hpp"

namespace kiln {
namespace {

const std::string k_accept = join({std::string(media_type::oci_manifest), std::string(media_type::oci_index),
                                   std::string(media_type::docker_manifest),
                                   std::string(media_type::docker_manifest_list)},
                                  ", ");

// The type of a fetched document: Content-Type when it names a manifest or index (registries and proxies send
// application/json too), else the document's mediaType, else its shape (OCI allows omitting mediaType).
Result<std::string> manifest_media_type(const HttpResponse& response, std::string_view bytes) {
    std::string content_type = response.headers.get("Content-Type").value_or("");
    content_type = to_lower(trim(std::string_view(content_type).substr(0, content_type.find(';'))));
    nlohmann::json json = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return fail("the manifest is not a JSON object");
    std::string declared;
    if (auto found = json.find("mediaType"); found != json.end() && found->is_string()) declared = found->get<std::string>();
    int schema_version = 0;
    if (auto found = json.find("schemaVersion"); found != json.end() && found->is_number_integer())
        schema_version = found->get<int>();
    if (is_schema1_media_type(content_type) || is_schema1_media_type(declared) || schema_version == 1)
        return fail("Docker schema 1 manifests are unsupported; re-push the image with a current client");
    for (const std::string& type : {content_type, declared})
        if (is_manifest_media_type(type) || is_index_media_type(type)) return type;
    if (declared.empty() && json.contains("manifests")) return std::string(media_type::oci_index);
    if (declared.empty() && json.contains("config")) return std::string(media_type::oci_manifest);
    return fail(str_cat("unsupported manifest media type \"", declared.empty() ? content_type : declared, "\""));
}

}  // namespace

Result<FetchedManifest> RegistryClient::get_manifest(const Reference& reference) {
    KILN_ASSIGN(std::optional<FetchedManifest> fetched, request_manifest(reference, false));
    return std::move(*fetched);
}

Result<std::optional<FetchedManifest>> RegistryClient::find_manifest(const Reference& reference) {
    return request_manifest(reference, true);
}

Result<std::optional<FetchedManifest>> RegistryClient::request_manifest(const Reference& reference, bool absent_ok) {
    std::string what = str_cat("GET manifest ", reference.repository_str(), " from ", reference.registry());
    if (reference.digest() && reference.digest()->algorithm() != "sha256")
        return fail(str_cat(what, ": only sha256 digests can be verified"));
    HttpRequest request{.method = "GET",
                        .url = str_cat(repository_url(reference), "/manifests/", reference.identifier()),
                        .redirects = Redirects::follow,
                        .timeout = k_document_timeout};
    request.headers.add("Accept", k_accept);
    KILN_ASSIGN(HttpResponse response, with_retries(m_options.retry, [&](int) -> Result<HttpResponse> {
                    KILN_ASSIGN(HttpResponse response, exchange({what, reference, RepositoryAccess::pull}, request, {},
                                                                nullptr, k_max_manifest_size));
                    if (absent_ok && response.status == 404) return response;
                    if (!response.ok()) return fail(http_status_error(what, response));
                    return response;
                }));
    if (absent_ok && response.status == 404) return std::nullopt;

    FetchedManifest fetched{.bytes = std::move(response.body)};
    fetched.digest = Digest::of_bytes(fetched.bytes);
    KILN_ASSIGN(fetched.media_type, with_context(manifest_media_type(response, fetched.bytes), what));
    if (reference.digest() && *reference.digest() != fetched.digest)
        return fail(str_cat(what, ": content has digest ", fetched.digest.str(), ", not the requested ",
                            reference.digest()->str()));
    if (auto announced = response.headers.get("Docker-Content-Digest")) {
        auto digest = Digest::parse(trim(*announced));
        if (digest && digest->algorithm() == "sha256" && *digest != fetched.digest)
            return fail(str_cat(what, ": the registry announced digest ", digest->str(), " but the content has ",
                                fetched.digest.str()));
    }
    return fetched;
}

Result<ResolvedImage> RegistryClient::resolve_image(const Reference& reference, const Platform& platform) {
    std::string what = str_cat("resolving ", reference.str(), " for ", platform.str());
    KILN_ASSIGN(FetchedManifest fetched, with_context(get_manifest(reference), what));
    if (is_index_media_type(fetched.media_type)) {
        KILN_ASSIGN(Index index, with_context(Index::parse(fetched.bytes), what));
        KILN_ASSIGN(Descriptor chosen, with_context(index.select(platform), what));
        KILN_ASSIGN(fetched, with_context(get_manifest(reference.with_digest(chosen.digest)), what));
        if (!is_manifest_media_type(fetched.media_type))
            return fail(str_cat(what, ": the index entry for ", platform.str(), " is a ", fetched.media_type,
                                ", not an image manifest"));
    }
    ResolvedImage image{.reference = reference.with_digest(fetched.digest), .manifest_digest = fetched.digest};
    KILN_ASSIGN(image.manifest, with_context(Manifest::parse(fetched.bytes), what));
    image.manifest_media_type = std::move(fetched.media_type);
    image.manifest_bytes = std::move(fetched.bytes);

    const Descriptor& config = image.manifest.config;
    if (config.size > k_max_config_size)
        return fail(str_cat(what, ": config ", config.digest.str(), " of ", config.size, " bytes exceeds the limit of ",
                            k_max_config_size));
    StringWriter config_bytes;
    KILN_TRY_CONTEXT(fetch_blob(reference, config, config_bytes), what);
    image.config_bytes = config_bytes.take();
    KILN_ASSIGN(image.config, with_context(ImageConfig::parse(image.config_bytes), what));

    Platform image_platform{.os = image.config.os, .architecture = image.config.architecture,
                            .variant = image.config.variant};
    if (!image.config.os.empty() && !image_platform.satisfies(platform))
        log_warn("image ", image.reference.str(), " is for ", image_platform.str(), ", not the requested ",
                 platform.str());
    return image;
}

Result<Digest> RegistryClient::push_manifest(const Reference& reference, std::string_view media_type,
                                             std::string_view bytes) {
    std::string what = str_cat("PUT manifest ", reference.repository_str(), " to ", reference.registry());
    if (bytes.size() > k_max_manifest_size)
        return fail(str_cat(what, ": ", bytes.size(), " bytes exceed the manifest limit of ", k_max_manifest_size));
    Digest digest = Digest::of_bytes(bytes);
    if (reference.digest() && *reference.digest() != digest)
        return fail(str_cat(what, ": content has digest ", digest.str(), ", not ", reference.digest()->str(),
                            " as the reference says"));
    std::string identifier = reference.tag().empty() ? digest.str() : reference.tag();
    HttpRequest request{.method = "PUT",
                        .url = str_cat(repository_url(reference), "/manifests/", identifier),
                        .timeout = k_document_timeout};
    request.headers.add("Content-Type", std::string(media_type));
    KILN_ASSIGN(HttpResponse response, with_retries(m_options.retry, [&](int) -> Result<HttpResponse> {
                    KILN_ASSIGN(HttpResponse response, exchange({what, reference, RepositoryAccess::push}, request,
                                                                {.bytes = bytes}, nullptr, k_small_response_limit));
                    if (!response.ok()) return fail(http_status_error(what, response));
                    return response;
                }));
    if (auto announced = response.headers.get("Docker-Content-Digest"); announced && trim(*announced) != digest.str())
        log_warn(what, ": the registry announced digest ", trim(*announced), " for content with digest ", digest.str());
    return digest;
}

}  // namespace kiln
