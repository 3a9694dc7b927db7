#include "builder/sources/image_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/index.hpp"
#include "images/oci_layout.hpp"
#include "registry/transfer.hpp"

namespace kiln {
namespace {

constexpr std::string_view k_layout_scheme = "oci-layout://";

std::string layout_blob_path(const std::string& dir, const Digest& digest) {
    return str_cat(dir, "/blobs/", digest.algorithm(), "/", digest.encoded());
}

// Reads a small blob of a layout and checks it against its digest.
Result<std::string> read_layout_blob(const std::string& dir, const Descriptor& descriptor, size_t limit) {
    std::string path = layout_blob_path(dir, descriptor.digest);
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

// `fetcher` gives each layer the function that fetches its blob.
Result<Image> image_from_parts(const BlobStore& store, const Manifest& manifest, ImageConfig config,
                               const std::string& name,
                               const std::function<std::function<Status()>(const Descriptor&)>& fetcher) {
    if (manifest.layers.size() != config.diff_ids.size())
        return fail(str_cat(name, ": the manifest lists ", manifest.layers.size(), " layers but the config ",
                            config.diff_ids.size(), " diff_ids"));
    std::vector<LayerPtr> layers;
    for (size_t i = 0; i < manifest.layers.size(); ++i) {
        const Descriptor& descriptor = manifest.layers[i];
        if (!is_layer_media_type(descriptor.media_type))
            return fail(str_cat(name, ": layer ", descriptor.digest.str(), " has unsupported media type ",
                                descriptor.media_type));
        layers.push_back(
            std::make_shared<FetchedLayer>(descriptor, config.diff_ids[i], store.path(descriptor.digest), fetcher(descriptor)));
    }
    return with_context(Image::create(std::move(config), std::move(layers)), name);
}

std::vector<Descriptor> layer_descriptors(const Image& image) {
    std::vector<Descriptor> descriptors;
    for (const LayerPtr& layer : image.layers()) descriptors.push_back(layer->descriptor());
    return descriptors;
}

}  // namespace

RegistryImageSource::RegistryImageSource(RegistryClient& client, RegistryRoutes routes, const BlobStore& store,
                                         ImageSourceSettings settings)
    : m_client(client), m_routes(std::move(routes)), m_store(store), m_settings(std::move(settings)) {}

std::shared_ptr<RegistryImageSource::Once> RegistryImageSource::once_for(const std::string& key) {
    std::lock_guard lock(m_mutex);
    std::shared_ptr<Once>& entry = m_once[key];
    if (!entry) entry = std::make_shared<Once>();
    return entry;
}

Result<SourceImage> RegistryImageSource::resolve(const std::string& name, const Platform& platform) {
    std::shared_ptr<Once> once = once_for(str_cat("resolve ", platform.str(), " ", name));
    // Only this name's resolution waits here; other images resolve and fetch meanwhile.
    std::lock_guard lock(once->mutex);
    if (!once->resolved) once->resolved = resolve_uncached(name, platform);
    return *once->resolved;
}

Result<SourceImage> RegistryImageSource::resolve_uncached(const std::string& name, const Platform& platform) {
    // As with every repeated flag, the last --build-context for a name wins.
    for (auto context = m_settings.build_contexts.rbegin(); context != m_settings.build_contexts.rend(); ++context)
        if (context->first == name) return resolve_layout(context->first, context->second, platform);
    return resolve_registry(name, platform);
}

Result<SourceImage> RegistryImageSource::resolve_layout(const std::string& context_name, const std::string& location,
                                                        const Platform& platform) {
    if (!location.starts_with(k_layout_scheme))
        return fail(str_cat("build context ", context_name, ": ", location, " is not an oci-layout:// location"));
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
    log_info("FROM ", context_name, ": ", location, " ", manifest_descriptor.digest.short_str(), ", ",
             manifest.layers.size(), " layer(s)");
    SourceImage image{.name = context_name,
                      .resolved = name,
                      .manifest_digest = manifest_descriptor.digest,
                      .image = Image::empty(platform),
                      .repository = std::nullopt,
                      .layout_directory = dir,
                      .manifest = manifest_descriptor,
                      .manifest_bytes = bytes,
                      .config_bytes = config_bytes};
    KILN_ASSIGN(image.image, image_from_parts(m_store, manifest, std::move(config), name, fetcher_of(image)));
    return image;
}

// Resolves `reference` at the first place its routes lead to that has it: each mirror in turn, then the registry
// itself. A mirror's failure is a warning; when every place fails, the error lists each one's reason.
Result<std::pair<Reference, ResolvedImage>> RegistryImageSource::resolve_routed(const Reference& reference,
                                                                                const Platform& platform) {
    std::vector<Reference> candidates = m_routes.candidates(reference);
    std::vector<std::string> failures;
    bool all_retryable = true;  // every place failed in a way that may pass: none could be reached
    for (size_t i = 0; i < candidates.size(); ++i) {
        const Reference& candidate = candidates[i];
        auto resolved = m_client.resolve_image(candidate, platform);
        if (resolved) {
            if (i > 0 || !(candidate == reference)) log_info("FROM ", reference.str(), ": pulling from ", candidate.name());
            return std::pair{candidate, std::move(*resolved)};
        }
        if (candidates.size() == 1 && candidate == reference) return fail(std::move(resolved.error()));
        bool last = i + 1 == candidates.size();
        if (!last) log_warn(resolved.error().message(), "; trying ", candidates[i + 1].registry(), " next");
        failures.push_back(resolved.error().message());
        all_retryable = all_retryable && resolved.error().retryable();
    }
    if (candidates.empty()) return fail(str_cat("no registry to pull ", reference.str(), " from"));
    std::string message = failures.size() == 1 ? failures.front()
                                               : str_cat("every registry failed: ", join(failures, "; "));
    if (!m_settings.default_fallback)
        message += str_cat(" (", reference.registry(), " itself was not tried: --skip-default-registry-fallback)");
    return fail(Error(std::move(message)).set_retryable(all_retryable));
}

Result<SourceImage> RegistryImageSource::resolve_registry(const std::string& name, const Platform& platform) {
    KILN_ASSIGN(Reference reference, Reference::parse(name));
    const WarmImages* warm = m_settings.warm;
    std::optional<WarmedImage> warmed = warm ? warm->find(name, platform) : std::nullopt;
    // A digest names the same image forever: a warmed one needs no registry. (A digest of an index is
    // resolved at the registry: the warm cache keeps the platform's manifest, not the index.)
    if (warmed && reference.digest() && *reference.digest() == warmed->manifest.digest) {
        if (auto image = resolve_warmed(name, *warmed)) return image;
    }
    auto routed = resolve_routed(reference, platform);
    if (!routed && warmed && routed.error().retryable()) {
        log_warn("FROM ", name, ": ", routed.error().message(), "; using the image warmed at ",
                 format_rfc3339(warmed->warmed), " (", warmed->resolved, ")");
        return resolve_warmed(name, *warmed);
    }
    if (!routed) return fail(std::move(routed.error()).context(str_cat("resolving base image ", name)));
    auto& [source, resolved] = *routed;
    SourceImage image{.name = name,
                      .resolved = resolved.reference.str(),
                      .manifest_digest = resolved.manifest_digest,
                      .image = Image::empty(platform),
                      .repository = source,
                      .layout_directory = {},
                      .manifest = Descriptor{.media_type = resolved.manifest_media_type,
                                             .digest = resolved.manifest_digest,
                                             .size = static_cast<std::int64_t>(resolved.manifest_bytes.size())},
                      .manifest_bytes = resolved.manifest_bytes,
                      .config_bytes = resolved.config_bytes};
    KILN_ASSIGN(image.image, image_from_parts(m_store, resolved.manifest, std::move(resolved.config), image.resolved,
                                              fetcher_of(image)));
    {
        // Known now, before any fetch: a push to the same registry mounts these blobs from there.
        std::lock_guard lock(m_mutex);
        for (const Descriptor& blob : resolved.manifest.layers) m_origins.emplace(blob.digest.str(), source);
    }
    log_info("FROM ", name, ": ", image.resolved, ", ", resolved.manifest.layers.size(), " layer(s)");
    return image;
}

Result<SourceImage> RegistryImageSource::resolve_warmed(const std::string& name, const WarmedImage& warmed) {
    const WarmImages& warm = *m_settings.warm;
    std::string what = str_cat("the warmed image ", warmed.resolved, " in ", warm.directory());
    KILN_ASSIGN(Reference resolved, with_context(Reference::parse(warmed.resolved), what));
    KILN_ASSIGN(std::string manifest_bytes, with_context(warm.blobs().read(warmed.manifest.digest), what));
    if (Digest::of_bytes(manifest_bytes) != warmed.manifest.digest)
        return fail(str_cat(what, ": the manifest does not match its digest ", warmed.manifest.digest.str()));
    KILN_ASSIGN(Manifest manifest, with_context(Manifest::parse(manifest_bytes), what));
    KILN_ASSIGN(std::string config_bytes, with_context(warm.blobs().read(manifest.config.digest, 8 << 20), what));
    if (Digest::of_bytes(config_bytes) != manifest.config.digest)
        return fail(str_cat(what, ": the config does not match its digest ", manifest.config.digest.str()));
    KILN_ASSIGN(ImageConfig config, with_context(ImageConfig::parse(config_bytes), what));
    Platform platform{.os = config.os, .architecture = config.architecture, .variant = config.variant};
    log_info("FROM ", name, ": ", warmed.resolved, " from the warmed cache (warmed ",
             format_rfc3339(warmed.warmed), ")");
    SourceImage image{.name = name,
                      .resolved = warmed.resolved,
                      .manifest_digest = warmed.manifest.digest,
                      .image = Image::empty(platform),
                      .repository = resolved,
                      .layout_directory = {},
                      .manifest = warmed.manifest,
                      .manifest_bytes = std::move(manifest_bytes),
                      .config_bytes = std::move(config_bytes)};
    KILN_ASSIGN(image.image, image_from_parts(m_store, manifest, std::move(config), image.resolved,
                                              fetcher_of(image)));
    return image;
}

bool RegistryImageSource::take_warmed(const Descriptor& blob) {
    const WarmImages* warm = m_settings.warm;
    if (!warm || !warm->contains(blob.digest)) return false;
    auto verified = warm->open_verified(blob);
    if (!verified) {
        log_warn("the warmed cache's copy of ", blob.digest.str(), " is not used: ", verified.error().message());
        return false;
    }
    // The very file that was verified is linked (no copy); across filesystems it is copied, and verified
    // again on the way.
    std::string from = str_cat("/proc/self/fd/", verified->get());
    std::string to = m_store.path(blob.digest);
    if (::linkat(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST) return true;
    if (auto copied = import_blob(m_store, from, blob); !copied) {
        log_warn("copying the warmed blob ", blob.digest.str(), " failed: ", copied.error().message());
        return false;
    }
    return true;
}

std::function<std::function<Status()>(const Descriptor&)> RegistryImageSource::fetcher_of(const SourceImage& image) {
    // Each layer fetches its own blob when it is first read: a stage extracting its layers side by side
    // extracts the first while the next ones download, and a layer it never reads is never downloaded.
    // Each keeps what fetching needs, not the image's documents.
    return [this, request = fetch_request(image, {})](const Descriptor& layer) -> std::function<Status()> {
        FetchRequest one = request;
        one.blobs = {layer};
        return [this, one = std::move(one)] { return fetch(one); };
    };
}

RegistryImageSource::FetchRequest RegistryImageSource::fetch_request(const SourceImage& image,
                                                                     std::vector<Descriptor> blobs) {
    return FetchRequest{.name = image.name,
                        .resolved = image.resolved,
                        .manifest_digest = image.manifest_digest,
                        .blobs = std::move(blobs),
                        .repository = image.repository,
                        .layout_directory = image.layout_directory};
}

Status RegistryImageSource::fetch_layers(const SourceImage& image) {
    return fetch(fetch_request(image, layer_descriptors(image.image)));
}

Status RegistryImageSource::fetch(const FetchRequest& request) {
    std::string key = str_cat("fetch ", request.manifest_digest.str(), " ", request.resolved);
    for (const Descriptor& blob : request.blobs) key += " " + blob.digest.str();
    std::shared_ptr<Once> once = once_for(key);
    std::lock_guard lock(once->mutex);
    if (!once->done) {
        once->fetched = fetch_uncached(request);
        once->done = true;
    }
    return once->fetched;
}

Status RegistryImageSource::fetch_uncached(const FetchRequest& request) {
    if (!request.repository) {
        for (const Descriptor& layer : request.blobs)
            KILN_TRY_CONTEXT(import_blob(m_store, layout_blob_path(request.layout_directory, layer.digest), layer),
                             request.resolved);
        return {};
    }
    auto start = std::chrono::steady_clock::now();
    std::vector<Descriptor> missing;
    size_t warmed = 0;
    for (const Descriptor& blob : request.blobs) {
        if (m_store.contains(blob.digest)) continue;
        if (take_warmed(blob))
            ++warmed;
        else
            missing.push_back(blob);
    }
    if (warmed > 0)
        log_info("FROM ", request.name, ": ", warmed, " layer(s) from the warmed cache ", m_settings.warm->directory());
    if (missing.empty()) return {};
    TransferOptions transfer{.jobs = m_settings.transfer_jobs};
    KILN_ASSIGN(std::uint64_t pulled, with_context(pull_blobs(m_client, *request.repository, missing, m_store, transfer),
                                                   str_cat("pulling ", request.name)));
    // One blob's pull was logged as it ended; several get their total.
    if (missing.size() > 1)
        log_info("FROM ", request.name, ": ", missing.size(), " layer(s), ", format_bytes(pulled), " pulled in ",
                 format_seconds(seconds_since(start)), " s");
    return {};
}

std::map<std::string, Reference> RegistryImageSource::blob_origins() const {
    std::lock_guard lock(m_mutex);
    return m_origins;
}

}  // namespace kiln
