#pragma once
// The Registry HTTP API v2 client: manifests and blobs, pulled with every byte verified against its digest and
// pushed without re-uploading what the registry has. Errors name the operation, the registry, the repository,
// the HTTP status and the registry's own error, and say whether a retry may help.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// "docker.io" for Docker Hub's other names (index.docker.io, registry-1.docker.io, registry.hub.docker.com); other
// names unchanged.
std::string canonical_registry(std::string registry);

// The registries a setting applies to: none, all, or those named (host[:port], as references write them).
class RegistrySet {
public:
    // The empty set.
    RegistrySet() = default;
    // Every registry (Kaniko's --insecure, --skip-tls-verify).
    static RegistrySet all();
    // Adds a registry; Docker Hub's aliases mean docker.io.
    void add(std::string registry);
    // Whether the set covers `registry` as a Reference names it.
    bool contains(std::string_view registry) const;

private:
    bool m_all = false;
    std::set<std::string, std::less<>> m_names;
};

// How often and how patiently a failed operation is tried again: the retries are spread over a window, each
// wait four times the one before (so a blip is retried within seconds, and a registry's rolling restart is
// outlasted), jittered up by up to a quarter so that parallel transfers do not retry in lockstep; or the wait
// the registry asked for (Retry-After), whichever is longer.
struct RetryPolicy {
    // Tries per operation, the first included (1 + --push-retry or --image-download-retry).
    int attempts = 4;
    // What the waits between the tries add up to, before jitter (--registry-retry-window).
    std::chrono::milliseconds window{60000};
    // The longest Retry-After honoured.
    std::chrono::milliseconds max_retry_after{120000};
    // When set and true, no further try is made: a wait in progress ends within a tenth of a second and the
    // last error is the answer.
    std::shared_ptr<const std::atomic<bool>> stop;
};

// TLS settings of one registry, beyond the system's CA bundle.
struct RegistryTls {
    // PEM certificates to trust for this registry, in addition to the system's (--registry-certificate).
    std::string extra_ca_pem;
    // A client certificate to present (--registry-client-cert).
    std::optional<ClientCertificate> client_certificate;
};

// Where the process was told to find CA certificates, as OpenSSL and Kaniko's image tell it.
struct TrustEnvironment {
    std::string ssl_cert_file;  // $SSL_CERT_FILE: a PEM bundle
    std::string ssl_cert_dir;   // $SSL_CERT_DIR: a directory of PEM files
    std::string kaniko_certs = "/kaniko/ssl/certs";  // Kaniko's image keeps its CA bundle there
};

// How to reach registries: scheme and TLS per registry, identity, limits and retries.
struct RegistryClientOptions {
    // Registries spoken to over plain HTTP; HTTPS otherwise, localhost included. Kaniko's --insecure (push) and
    // --insecure-pull (pull) mean all(); --insecure-registry names some. A builder that treats pulls and pushes
    // differently uses one client for each.
    RegistrySet plain_http;
    // Registries whose TLS certificate is not verified (--skip-tls-verify, --skip-tls-verify-registry).
    RegistrySet skip_tls_verify;
    // Per registry (host[:port]; Docker Hub as docker.io).
    std::map<std::string, RegistryTls, std::less<>> tls;
    // PEM certificates every registry is trusted with, beyond the system's CA bundle (SSL_CERT_FILE,
    // SSL_CERT_DIR and Kaniko's /kaniko/ssl/certs, for kiln).
    std::string trusted_ca_pem;
    std::string user_agent = "kiln/0.1";
    // Where secrets come from; null means anonymous.
    std::shared_ptr<CredentialProvider> credentials;
    HttpTimeouts timeouts;
    RetryPolicy retry;
    // Blobs up to this size are uploaded in one PUT; larger ones in PATCH requests of this size, then a PUT.
    std::uint64_t upload_chunk_size = 64 << 20;
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

// What push_blob did: uploaded the bytes, mounted the blob from another repository of the same registry, or
// found it already in the repository.
enum class BlobPush { uploaded, mounted, already_present };

// Opens an upload's bytes; called once per try, so that a failed upload can start over from the first byte.
using BlobOpener = std::function<Result<std::unique_ptr<Reader>>()>;

// Where a BlobOpener reads from: perhaps a download (a layer fetched when first read), or local bytes.
enum class BlobBytes { maybe_fetched, at_hand };

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
    // As get_manifest, but a manifest the registry does not have (404) is nullopt rather than an error.
    Result<std::optional<FetchedManifest>> find_manifest(const Reference& reference);

    // Follows an index to the manifest for `platform`, then fetches and verifies the config. The error for a
    // platform the index lacks lists the ones it offers.
    Result<ResolvedImage> resolve_image(const Reference& reference, const Platform& platform = host_platform());

    // Streams blob `blob` of `repository` (its tag and digest are ignored) into `sink`, checking size and digest
    // on the way. A transfer that breaks, or whose bytes fail verification, starts over after rewinding the sink,
    // with a warning, up to the retry policy's attempts; bytes that fail verification are never accepted. Two
    // tries in a row that bring the same wrong content end the retries: that content is what the registry holds,
    // and waiting will not change it. On failure the sink holds unverified bytes: the caller must discard them
    // (a BlobIngest destroyed uncommitted does).
    Status fetch_blob(const Reference& repository, const Descriptor& blob, RewindableWriter& sink);
    // As above into a sink that cannot start over: a transfer is tried again only while nothing reached it.
    Status fetch_blob(const Reference& repository, const Descriptor& blob, Writer& sink);

    // Whether `repository` has blob `digest` (HEAD).
    Result<bool> blob_exists(const Reference& repository, const Digest& digest);

    // Blobs up to this size whose bytes are at hand are sent without asking first whether the repository has
    // them: the question (HEAD) costs the round trip that sending them does.
    static constexpr std::int64_t k_send_unasked_size = 64 << 10;

    // Uploads `blob` (exactly blob.size bytes from `open`), unless the repository has it already (HEAD). With
    // `mount_from`, a repository of the same registry that may hold the blob, it is mounted from there when it
    // does (POST ?mount=&from=), and uploaded when it does not. A blob of at most k_send_unasked_size whose
    // `bytes` are at hand is sent without the HEAD. A failed try starts over from `open`.
    Result<BlobPush> push_blob(const Reference& repository, const Descriptor& blob, const BlobOpener& open,
                               const std::optional<Reference>& mount_from = std::nullopt,
                               BlobBytes bytes = BlobBytes::maybe_fetched);
    // As above from a stream that can be read once (and is at hand): a try that already sent bytes is not
    // repeated.
    Result<BlobPush> push_blob(const Reference& repository, const Descriptor& blob, Reader& source);

    // Whether the registry lets us push to `repository`, checked as Kaniko does by starting a blob upload and
    // cancelling it. The error says why not (HTTP status and the registry's error).
    Status check_push_permission(const Reference& repository);

    // Stores a manifest or index under the reference's tag, else its digest; returns the content's digest. A
    // reference digest that differs from the content's is an error.
    Result<Digest> push_manifest(const Reference& reference, std::string_view media_type, std::string_view bytes);

    // The options the client was made with.
    const RegistryClientOptions& options() const { return m_options; }

private:
    struct Call;
    Result<std::optional<FetchedManifest>> request_manifest(const Reference& reference, bool absent_ok);
    struct RequestBody;
    struct UploadSession;
    // One try of one request, answering a 401's challenge once.
    Result<HttpResponse> exchange(const Call& call, HttpRequest request, const RequestBody& body, Writer* sink,
                                  size_t body_limit);
    Result<bool> blob_exists(const Reference& repository, const Digest& digest, RepositoryAccess access);
    // One try; on a digest mismatch with the expected size, `wrong_digest` gets the digest of what came.
    Status fetch_blob_once(const Reference& repository, const Descriptor& blob, Writer& sink, std::string& wrong_digest);
    Result<BlobPush> push_blob_once(const Reference& repository, const Descriptor& blob, const BlobOpener& open,
                                    const std::optional<Reference>& mount_from, BlobBytes bytes);
    Result<UploadSession> start_upload(const Reference& repository, const Descriptor& blob,
                                       const std::optional<Reference>& mount_from);
    Status upload_monolithic(const Reference& repository, const Descriptor& blob, const std::string& location,
                             Reader& source);
    Status upload_chunked(const Reference& repository, const Descriptor& blob, std::string location, Reader& source);
    HttpClient& http_for(const Reference& reference);
    // "https://registry-1.docker.io/v2/library/busybox".
    std::string repository_url(const Reference& reference) const;

    RegistryClientOptions m_options;
    std::mutex m_http_mutex;
    // One HTTP client per TLS setting in use: verifying, not verifying, and one per registry with its own CA or
    // client certificate. Created on first use.
    std::map<std::string, std::unique_ptr<HttpClient>, std::less<>> m_http;
    Authenticator m_auth;
};

}  // namespace kiln
