#pragma once
// Where stages' images come from: a registry (through --registry-mirror and --registry-map) or a local OCI
// layout named by --build-context. Resolving an image fetches its manifest and config only; its layers' blobs
// are fetched into a BlobStore when a stage needs them. The service holds no build state, so any command can
// use it (`kiln build`, `kiln warm`).

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/sources/warm_images.hpp"
#include "common/error.hpp"
#include "images/blob_store.hpp"
#include "images/digest.hpp"
#include "images/image.hpp"
#include "images/platform.hpp"
#include "registry/client.hpp"
#include "registry/mirrors.hpp"
#include "registry/reference.hpp"

namespace kiln {

// An image resolved to one manifest for one platform.
struct SourceImage {
    std::string name;      // as the Dockerfile names it, expanded
    std::string resolved;  // "registry/repository@sha256:…", or the build context and its layout
    Digest manifest_digest;
    // Its config, and layers whose blobs are fetched when first read (or by fetch_layers()).
    Image image;
    // Where the blobs are: a repository (a mirror's, when one served it), or a layout's directory.
    std::optional<Reference> repository;
    std::string layout_directory;
    // The documents as the registry or layout served them, verified: what `kiln warm` keeps.
    Descriptor manifest;
    std::string manifest_bytes;
    std::string config_bytes;
};

class ImageSource {
public:
    virtual ~ImageSource() = default;
    // Resolves `name` (a reference or a --build-context name, not "scratch") for `platform`. Safe to call from
    // several threads; each name and platform is resolved once, and later calls get the same answer.
    virtual Result<SourceImage> resolve(const std::string& name, const Platform& platform) = 0;
    // Makes the blob of every layer of `image` readable, fetching and verifying what is missing. Safe to call
    // from several threads; callers asking for one image at once share one download. Reading a layer's blob
    // does the same, so callers need this only to fetch ahead.
    virtual Status fetch_layers(const SourceImage& image) = 0;
};

struct ImageSourceSettings {
    // --build-context NAME=oci-layout://DIR[:TAG]: names that are a local layout rather than a registry.
    std::vector<std::pair<std::string, std::string>> build_contexts;
    size_t transfer_jobs = 4;        // blobs fetched at once
    bool default_fallback = true;    // false with --skip-default-registry-fallback: said in errors
    // Images warmed by `kiln warm`: their blobs are taken from there, and a warmed tag stands in for a registry
    // that cannot be reached. Null: none.
    const WarmImages* warm = nullptr;
};

// The registry-and-layout ImageSource, storing blobs in `store`.
class RegistryImageSource final : public ImageSource {
public:
    RegistryImageSource(RegistryClient& client, RegistryRoutes routes, const BlobStore& store,
                        ImageSourceSettings settings);

    Result<SourceImage> resolve(const std::string& name, const Platform& platform) override;
    Status fetch_layers(const SourceImage& image) override;

    // The repository each resolved image's blobs are in, by digest, whether fetched or not: a push to the same
    // registry mounts them from there instead of uploading them.
    std::map<std::string, Reference> blob_origins() const;

private:
    // One resolution or one fetch, done once however many threads ask.
    struct Once {
        std::mutex mutex;
        bool done = false;
        std::optional<Result<SourceImage>> resolved;
        Status fetched;
    };
    // What fetching one image's layers needs, kept by each of its layers.
    struct FetchRequest {
        std::string name;
        std::string resolved;
        Digest manifest_digest;
        std::vector<Descriptor> blobs;
        std::optional<Reference> repository;
        std::string layout_directory;
    };
    std::shared_ptr<Once> once_for(const std::string& key);
    // The request that fetches `blobs` of `image`.
    static FetchRequest fetch_request(const SourceImage& image, std::vector<Descriptor> blobs);
    // What gives each layer of `image` the function that fetches its blob.
    std::function<std::function<Status()>(const Descriptor&)> fetcher_of(const SourceImage& image);
    Status fetch(const FetchRequest& request);
    Result<SourceImage> resolve_uncached(const std::string& name, const Platform& platform);
    Result<SourceImage> resolve_layout(const std::string& context_name, const std::string& location,
                                       const Platform& platform);
    Result<SourceImage> resolve_registry(const std::string& name, const Platform& platform);
    Result<SourceImage> resolve_warmed(const std::string& name, const WarmedImage& warmed);
    // Puts a warmed blob in the store (verified, linked when it can be); false when the warm cache lacks it.
    bool take_warmed(const Descriptor& blob);
    Result<std::pair<Reference, ResolvedImage>> resolve_routed(const Reference& reference, const Platform& platform);
    Status fetch_uncached(const FetchRequest& request);

    RegistryClient& m_client;
    RegistryRoutes m_routes;
    const BlobStore& m_store;
    ImageSourceSettings m_settings;
    mutable std::mutex m_mutex;  // guards the two maps below, never held through a fetch
    std::map<std::string, std::shared_ptr<Once>> m_once;
    std::map<std::string, Reference> m_origins;
};

}  // namespace kiln
