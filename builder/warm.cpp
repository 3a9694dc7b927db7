#include "builder/warm.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "builder/plan/plan.hpp"
#include "builder/snapshot/extracted_layer_store.hpp"
#include "builder/sources/image_source.hpp"
#include "builder/sources/registry_access.hpp"
#include "builder/sources/warm_images.hpp"
#include "builder/work_dir.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/manifest.hpp"

namespace kiln {
namespace {

// --image, then the FROM lines of --dockerfile, each name and platform once.
Result<std::vector<std::pair<std::string, Platform>>> images_to_warm(const WarmOptions& options,
                                                                     const Platform& platform) {
    std::vector<std::pair<std::string, Platform>> images;
    for (const std::string& name : options.images) images.emplace_back(name, platform);
    if (options.settings.dockerfile.empty()) return images;
    const std::string& path = options.settings.dockerfile;
    KILN_ASSIGN(std::string text, with_context(read_file(path, 16 << 20), "reading the Dockerfile"));
    KILN_ASSIGN(dockerfile::Dockerfile dockerfile, dockerfile::parse_dockerfile(text, path));
    BuildArgs build_args(options.settings.build_args);
    BuildPlatforms platforms{.target = platform, .build = host_platform()};
    KILN_ASSIGN(MetaArgs meta_args, MetaArgs::evaluate(dockerfile, build_args, platforms));
    KILN_ASSIGN(auto from_lines, base_images(dockerfile, meta_args, platform));
    for (auto& image : from_lines)
        if (std::find(images.begin(), images.end(), image) == images.end()) images.push_back(std::move(image));
    return images;
}

// The blobs a warmed image needs besides its manifest: its config and layers, read from the stored manifest.
std::optional<std::vector<Descriptor>> warmed_blobs(const WarmImages& warm, const WarmedImage& image) {
    if (!warm.contains(image.manifest.digest)) return std::nullopt;
    auto bytes = warm.blobs().read(image.manifest.digest);
    if (!bytes) return std::nullopt;
    auto manifest = Manifest::parse(*bytes);
    if (!manifest) return std::nullopt;
    std::vector<Descriptor> blobs = manifest->layers;
    blobs.push_back(manifest->config);
    return blobs;
}

bool complete(const WarmImages& warm, const WarmedImage& image) {
    auto blobs = warmed_blobs(warm, image);
    if (!blobs) return false;
    for (const Descriptor& blob : *blobs)
        if (!warm.contains(blob.digest)) return false;
    return true;
}

class Warmer {
public:
    Warmer(const WarmOptions& options, WarmImages& warm, RegistryImageSource& source, ExtractedLayerStore* extracted,
           OwnershipFailure ownership)
        : m_options(options), m_warm(warm), m_source(source), m_extracted(extracted), m_ownership(ownership) {}

    Status warm(const std::string& name, const Platform& platform) {
        std::string what = str_cat("warming ", name, " (", platform.str(), ")");
        std::optional<WarmedImage> before = m_warm.find(name, platform);
        auto reference = Reference::parse(name);
        if (!reference) return fail(std::move(reference.error()).context(what));
        // A digest names the same image forever; a tag is resolved anew, since it may have moved.
        if (!m_options.force && before && reference->digest() && complete(m_warm, *before)) {
            log_info(name, ": already warm (", before->resolved, ")");
            return {};
        }
        KILN_ASSIGN(SourceImage image, with_context(m_source.resolve(name, platform), what));
        WarmedImage warmed{.name = name,
                           .resolved = image.resolved,
                           .manifest = image.manifest,
                           .warmed = static_cast<std::int64_t>(std::time(nullptr))};
        bool had_all = !m_options.force && complete(m_warm, warmed);
        if (m_options.force) KILN_TRY_CONTEXT(drop_broken(image), what);
        auto start = std::chrono::steady_clock::now();
        KILN_TRY_CONTEXT(m_source.fetch_layers(image), what);
        if (m_extracted) {
            for (const LayerPtr& layer : image.image.layers())
                KILN_TRY_CONTEXT(m_extracted->acquire(*layer, m_ownership), what);
            m_extracted->release();
        }
        std::uint64_t bytes = 0;
        for (const LayerPtr& layer : image.image.layers()) {
            KILN_TRY_CONTEXT(m_warm.sync(layer->descriptor().digest), what);
            bytes += static_cast<std::uint64_t>(layer->descriptor().size);
        }
        KILN_ASSIGN(Manifest manifest, with_context(Manifest::parse(image.manifest_bytes), what));
        KILN_TRY_CONTEXT(m_warm.put(manifest.config, image.config_bytes), what);
        KILN_TRY_CONTEXT(m_warm.put(image.manifest, image.manifest_bytes), what);
        // The record last: a name is warm only once everything it needs is on the disk.
        KILN_TRY_CONTEXT(m_warm.record(name, platform, warmed), what);
        if (had_all)
            log_info(name, ": up to date (", image.resolved, ")");
        else
            log_info(name, ": warmed ", image.resolved, ", ", image.image.layers().size(), " layer(s), ",
                     format_bytes(bytes), " in ", format_seconds(seconds_since(start)), " s");
        return {};
    }

private:
    // --force: every kept blob of the image is read again, and one that fails its digest is removed, so that
    // it is fetched anew.
    Status drop_broken(const SourceImage& image) {
        for (const LayerPtr& layer : image.image.layers()) {
            const Descriptor& blob = layer->descriptor();
            if (!m_warm.contains(blob.digest)) continue;
            if (auto verified = m_warm.verify(blob); !verified) {
                log_warn(verified.error().message(), ": fetching it again");
                std::string path = m_warm.blobs().path(blob.digest);
                if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno(str_cat("unlink ", path));
            }
        }
        return {};
    }

    const WarmOptions& m_options;
    WarmImages& m_warm;
    RegistryImageSource& m_source;
    ExtractedLayerStore* m_extracted;
    OwnershipFailure m_ownership;
};

}  // namespace

Status run_warm(const WarmOptions& options, const HostEnvironment& environment) {
    const BuildOptions& settings = options.settings;
    Platform platform = settings.custom_platform.value_or(host_platform());
    KILN_ASSIGN(auto images, images_to_warm(options, platform));
    std::string cache_dir = settings.cache_dir.empty() ? environment.default_cache_dir() : settings.cache_dir;
    KILN_ASSIGN(WarmImages warm, with_context(WarmImages::open(cache_dir + "/images"), "--cache-dir " + cache_dir));
    KILN_ASSIGN(RegistryClientOptions shared, shared_client_options(settings.registries, environment.credentials(), environment.trust()));
    KILN_ASSIGN(RegistryRoutes routes, registry_routes(settings.registries));
    // Warming only pulls: Kaniko's warmer takes --insecure and --skip-tls-verify for its pulls.
    RegistryAccess access = settings.pull;
    access.plain_http = access.plain_http || settings.push.plain_http;
    access.skip_tls_verify = access.skip_tls_verify || settings.push.skip_tls_verify;
    RegistryClient client(client_options(shared, access));
    RegistryImageSource source(client, std::move(routes), warm.blobs(),
                               ImageSourceSettings{.build_contexts = {},
                                                   .transfer_jobs = settings.registries.transfer_jobs,
                                                   .default_fallback = settings.registries.default_fallback,
                                                   .warm = nullptr});
    std::unique_ptr<ExtractedLayerStore> extracted;
    OwnershipFailure ownership = environment.ownership_policy();
    if (options.extract) {
        KILN_ASSIGN(extracted, with_context(ExtractedLayerStore::open(cache_dir + "/extracted", extracted_layer_variant(ownership),
                                                                      dispose_directory),
                                            "--extract"));
        log_info("extracting layers into ", extracted->directory());
    }
    log_info("warming ", images.size(), " image(s) into ", warm.directory());
    Warmer warmer(options, warm, source, extracted.get(), ownership);
    for (const auto& [name, image_platform] : images) KILN_TRY(warmer.warm(name, image_platform));
    if (extracted && settings.cache_dir_max) KILN_TRY(extracted->evict(settings.cache_dir_max));
    return {};
}

}  // namespace kiln
