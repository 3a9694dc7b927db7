#pragma once
// The Registry HTTP API v2 client: manifests and blobs, pulled with every byte verified against its digest and
// pushed without re-uploading what the registry has. Errors name the operation, the registry, the repository,
// the HTTP status and the registry's own error, and say whether a retry may help.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "images/descriptor.hpp"
#include "images/image_config.hpp"
#include "images/manifest.hpp"
#include "images/platform.hpp"
#include "registry/auth.hpp"
#include "registry/http.hpp"
#include "registry/reference.hpp"

namespace kiln {

// The registries a setting applies to: none, all, or those named (host[:port], as references write them).
class RegistrySet {
public:
    // The empty set.
    RegistrySet() = default;
    // Every registry (Kaniko's --insecure, --skip-tls-verify).
    static RegistrySet all();
    // Adds a registry; Docker Hub's aliases (index.docker.io, registry-1.docker.io) mean docker.io.
    void add(std::string registry);
    // Whether the set covers `registry` as a Reference names it.
    bool contains(std::string_view registry) const;

private:
    bool m_all = false;
    std::set<std::string, std::less<>> m_names;
};

// How to reach registries: scheme and TLS per registry, identity, limits and retries.
struct RegistryClientOptions {
    // Registries spoken to over plain HTTP; HTTPS otherwise, localhost included. Kaniko's --insecure (push) and
    // --insecure-pull (pull) mean all(); --insecure-registry names some. A builder that treats pulls and pushes
    // differently uses one client for each.
    RegistrySet plain_http;
    // Registries whose TLS certificate is not verified (--skip-tls-verify, --skip-tls-verify-registry).
    RegistrySet skip_tls_verify;
    std::string user_agent = "kiln/0.1";
    // Where secrets come from; null means anonymous.
    std::shared_ptr<CredentialProvider> credentials;
    HttpTimeouts timeouts;
    // Tries for a request that failed in a retryable way (a 503, a reset connection) and can be sent again.
    int attempts = 2;
    std::chrono::milliseconds retry_delay{1000};
};

// A manifest or index as the registry served it, verified.
struct FetchedManifest {
    std::string bytes;
    // From Content-Type, else the document's own mediaType: an image manifest or an index, never schema 1.
    std::string media_type;
    // The sha256 of `bytes`.
    Digest digest;
};

// An image manifest for one platform, with its config, all verified against their digests.
struct ResolvedImage {
    // The reference asked for, pinned to the image manifest's digest.
    Reference reference;
    Digest manifest_digest;
    std::string manifest_media_type;
    std::string manifest_bytes;
    Manifest manifest;
    std::string config_bytes;
    ImageConfig config;
};

// What push_blob did: uploaded the bytes, or found the blob already in the repository.
enum class BlobPush { uploaded, already_present };

// Thread-safe: concurrent pulls and pushes share connections and cached tokens.
class RegistryClient {
public:
    // Manifests and indexes larger than this are refused unread, as by containerd and distribution 3.
    static constexpr size_t k_max_manifest_size = 4 << 20;
    // Image configs larger than this are refused before download.
    static constexpr std::int64_t k_max_config_size = 8 << 20;

    // No network traffic until the first operation.
    explicit RegistryClient(RegistryClientOptions options = {});
    ~RegistryClient();

    // Fetches the manifest or index a reference names (its digest if it has one, else its tag). The content must
    // hash to the reference's digest, and to the Docker-Content-Digest the registry announces.
    Result<FetchedManifest> get_manifest(const Reference& reference);

    // Follows an index to the manifest for `platform`, then fetches and verifies the config. The error for a
    // platform the index lacks lists the ones it offers.
    Result<ResolvedImage> resolve_image(const Reference& reference, const Platform& platform = host_platform());

    // Streams blob `blob` of `repository` (its tag and digest are ignored) into `sink`, checking size and digest
    // on the way. On failure the sink has received unverified, possibly partial bytes: the caller must discard
    // them (a BlobIngest destroyed uncommitted does).
    Status fetch_blob(const Reference& repository, const Descriptor& blob, Writer& sink);

    // Whether `repository` has blob `digest` (HEAD).
    Result<bool> blob_exists(const Reference& repository, const Digest& digest);

    // Uploads `blob` from `source` (exactly blob.size bytes), unless the repository has it already.
    Result<BlobPush> push_blob(const Reference& repository, const Descriptor& blob, Reader& source);

    // Stores a manifest or index under the reference's tag, else its digest; returns the content's digest. A
    // reference digest that differs from the content's is an error.
    Result<Digest> push_manifest(const Reference& reference, std::string_view media_type, std::string_view bytes);

private:
    struct Call;
    struct RequestBody;
    Result<HttpResponse> exchange(const Call& call, HttpRequest request, const RequestBody& body, Writer* sink,
                                  size_t body_limit);
    Result<bool> blob_exists(const Reference& repository, const Digest& digest, RepositoryAccess access);
    HttpClient& http_for(const Reference& reference);
    // "https://registry-1.docker.io/v2/library/busybox".
    std::string repository_url(const Reference& reference) const;

    RegistryClientOptions m_options;
    HttpClient m_verifying_http;
    HttpClient m_unverified_http;
    Authenticator m_auth;
};

}  // namespace kiln
