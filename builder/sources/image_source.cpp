#include "builder/sources/image_source.hpp"

#include <fcntl.h>

#include <chrono>
#include <optional>
#include <set>
#include <vector>

#include "builder/sandbox/id_map.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/parallel.hpp"
#include "common/strings.hpp"
#include "registry/transfer.hpp"
#include "images/index.hpp"
#include "images/oci_layout.hpp"
#include "layers/compression.hpp"

namespace kiln {
namespace {

constexpr std::string_view k_layout_scheme = "oci-layout://";

// Reads a small blob of a layout and checks it against its digest.
Result<std::string> read_layout_blob(const std::string& dir, const Descriptor& descriptor, size_t limit) {
    std::string path = str_cat(dir, "/blobs/", descriptor.digest.algorithm(), "/", descriptor.digest.encoded());
    KILN_ASSIGN(std::string bytes, read_file(path, limit));
    if (Digest::of_bytes(bytes) != descriptor.digest)
        return fail(str_cat(path, " does not match its digest ", descriptor.digest.str()));
    return bytes;
}

// Copies a layout's layer into the store, verifying it on the way.
Status import_blob(const BlobStore& store, const std::string& path, const Descriptor& descriptor) {
    if (store.contains(descriptor.digest)) return {};
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", path));
    KILN_ASSIGN(BlobIngest ingest, store.begin());
    FdReader reader(fd.get(), path);
    KILN_TRY(copy_stream(reader, ingest));
    KILN_TRY_CONTEXT(ingest.commit(descriptor.digest), path);
    return {};
}

Result<Image> image_from_parts(const BlobStore& store, const Manifest& manifest, ImageConfig config,
                               const std::string& name) {
    if (manifest.layers.size() != config.diff_ids.size())
        return fail(str_cat(name, ": the manifest lists ", manifest.layers.size(), " layers but the config ",
                            config.diff_ids.size(), " diff_ids"));
    std::vector<LayerPtr> layers;
    for (size_t i = 0; i < manifest.layers.size(); ++i) {
        const Descriptor& descriptor = manifest.layers[i];
        if (!is_layer_media_type(descriptor.media_type))
            return fail(str_cat(name, ": layer ", descriptor.digest.str(), " has unsupported media type ",
                                descriptor.media_type));
        layers.push_back(std::make_shared<FileLayer>(descriptor, config.diff_ids[i], store.path(descriptor.digest)));
    }
    return with_context(Image::create(std::move(config), std::move(layers)), name);
}

Result<Image> load_from_layout(BuildSession& session, const std::string& context_name, const std::string& location,
                               const Platform& platform) {
    std::string spec = location.substr(k_layout_scheme.size());
    std::string dir = spec;
    std::string tag;
    if (size_t colon = spec.rfind(':'); colon != std::string::npos && spec.find('/', colon) == std::string::npos) {
        dir = spec.substr(0, colon);
        tag = spec.substr(colon + 1);
    }
    std::string name = str_cat("build context ", context_name, " (", location, ")");
    KILN_ASSIGN(Index index, with_context(read_oci_layout_index(dir), name));
    const Descriptor* chosen = nullptr;
    for (const Descriptor& entry : index.manifests) {
        auto ref = entry.annotations.find(std::string(k_ref_name_annotation));
        bool matches = tag.empty() ? index.manifests.size() == 1 : (ref != entry.annotations.end() && ref->second == tag);
        if (matches) chosen = &entry;
    }
    if (!chosen)
        return fail(str_cat(name, ": ", tag.empty() ? "the layout holds several images: name one with :TAG"
                                                     : str_cat("no image tagged \"", tag, "\" in the layout")));
    Descriptor manifest_descriptor = *chosen;
    KILN_ASSIGN(std::string bytes, with_context(read_layout_blob(dir, manifest_descriptor, 4 << 20), name));
    if (is_index_media_type(manifest_descriptor.media_type)) {
        KILN_ASSIGN(Index nested, with_context(Index::parse(bytes), name));
        KILN_ASSIGN(manifest_descriptor, with_context(nested.select(platform), name));
        KILN_ASSIGN(bytes, with_context(read_layout_blob(dir, manifest_descriptor, 4 << 20), name));
    }
    KILN_ASSIGN(Manifest manifest, with_context(Manifest::parse(bytes), name));
    KILN_ASSIGN(std::string config_bytes, with_context(read_layout_blob(dir, manifest.config, 8 << 20), name));
    KILN_ASSIGN(ImageConfig config, with_context(ImageConfig::parse(config_bytes), name));
    for (const Descriptor& layer : manifest.layers) {
        std::string path = str_cat(dir, "/blobs/", layer.digest.algorithm(), "/", layer.digest.encoded());
        KILN_TRY_CONTEXT(import_blob(session.store, path, layer), name);
    }
    log_info("FROM ", context_name, ": ", location, " ", manifest_descriptor.digest.short_str(), ", ",
             manifest.layers.size(), " layer(s)");
    return image_from_parts(session.store, manifest, std::move(config), name);
}

// Resolves `reference` at the first place its routes lead to that has it: each mirror in turn, then the registry
// itself. A mirror's failure is a warning; when every place fails, the error lists each one's reason.
Result<std::pair<Reference, ResolvedImage>> resolve_routed(BuildSession& session, const Reference& reference,
                                                           const Platform& platform) {
    std::vector<Reference> candidates = session.routes.candidates(reference);
    std::vector<std::string> failures;
    for (size_t i = 0; i < candidates.size(); ++i) {
        const Reference& candidate = candidates[i];
        auto resolved = session.pull_client.resolve_image(candidate, platform);
        if (resolved) {
            if (i > 0 || !(candidate == reference)) log_info("FROM ", reference.str(), ": pulling from ", candidate.name());
            return std::pair{candidate, std::move(*resolved)};
        }
        if (candidates.size() == 1 && candidate == reference) return fail(std::move(resolved.error()));
        bool last = i + 1 == candidates.size();
        if (!last) log_warn(resolved.error().message(), "; trying ", candidates[i + 1].registry(), " next");
        failures.push_back(resolved.error().message());
    }
    if (candidates.empty()) return fail(str_cat("no registry to pull ", reference.str(), " from"));
    std::string message = failures.size() == 1 ? failures.front()
                                               : str_cat("every registry failed: ", join(failures, "; "));
    if (!session.options.registries.default_fallback)
        message += str_cat(" (", reference.registry(), " itself was not tried: --skip-default-registry-fallback)");
    return fail(std::move(message));
}

Result<Image> load_from_registry(BuildSession& session, const std::string& name, const Platform& platform) {
    KILN_ASSIGN(Reference reference, Reference::parse(name));
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN(auto routed, with_context(resolve_routed(session, reference, platform),
                                          str_cat("resolving base image ", name)));
    auto& [source, resolved] = routed;
    TransferOptions transfer{.jobs = session.options.registries.transfer_jobs};
    KILN_ASSIGN(std::uint64_t pulled,
                with_context(pull_blobs(session.pull_client, source, resolved.manifest.layers,
                                        session.store, transfer),
                             str_cat("pulling ", reference.str())));
    session.note_pulled(source, resolved.manifest.layers);
    log_info("FROM ", name, ": ", resolved.reference.str(), ", ", resolved.manifest.layers.size(), " layer(s), ",
             format_bytes(pulled), " pulled in ", format_seconds(seconds_since(start)), " s");
    return image_from_parts(session.store, resolved.manifest, std::move(resolved.config), resolved.reference.str());
}

}  // namespace

Result<Image> load_base_image(BuildSession& session, const std::string& name, const Platform& platform) {
    if (name == "scratch") return Image::empty(platform);
    for (const auto& [context_name, location] : session.options.build_contexts)
        if (context_name == name) return load_from_layout(session, context_name, location, platform);
    return load_from_registry(session, name, platform);
}

OwnershipFailure ownership_failure_policy() {
    auto map = read_own_id_map("uid_map");
    if (map && id_count(*map) < k_container_id_count) return OwnershipFailure::warn_once;
    return OwnershipFailure::error;
}

Status materialize_rootfs(const Image& image, const RootFs& rootfs, OwnershipFailure ownership_failure) {
    for (const LayerPtr& layer : image.layers()) KILN_TRY(extract_layer(*layer, rootfs, ownership_failure));
    return {};
}

Result<ExtractStats> extract_layer(const Layer& layer, const RootFs& rootfs, OwnershipFailure ownership_failure,
                                   WhiteoutFormat whiteout_format) {
    const Descriptor& descriptor = layer.descriptor();
    std::string name = descriptor.digest.str();
    KILN_ASSIGN(auto blob, layer.open_blob());
    HashingReader blob_hash(*blob);
    KILN_ASSIGN(auto tar, with_context(make_auto_decompressor(blob_hash), str_cat("layer ", name)));
    HashingReader tar_hash(*tar);
    ExtractStats stats;
    {
        // Reading, hashing and decompressing run on a second thread while this one creates the files.
        std::unique_ptr<Reader> read_ahead = make_read_ahead_reader(tar_hash);
        ExtractOptions options{.layer_name = name, .ownership_failure = ownership_failure};
        options.whiteout_format = whiteout_format;
        KILN_ASSIGN(stats, apply_layer(rootfs, *read_ahead, options));
        // The tar may end before its stream does (padding after the end-of-archive blocks): hash it all.
        std::vector<char> buffer(1 << 16);
        while (true) {
            KILN_ASSIGN(size_t n, read_ahead->read(buffer.data(), buffer.size()));
            if (n == 0) break;
        }
    }
    if (blob_hash.finish_digest() != descriptor.digest.str())
        return fail(str_cat("layer ", name, ": its content does not match its digest"));
    if (tar_hash.finish_digest() != layer.diff_id().str())
        return fail(str_cat("layer ", name, ": its uncompressed content does not match diffID ",
                            layer.diff_id().str()));
    return stats;
}

}  // namespace kiln
