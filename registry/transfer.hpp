#pragma once
// Moving whole images between a registry and this machine: blobs pulled into a BlobStore and images pushed to
// one or more destinations, several blobs at once, each blob's progress logged.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "images/blob_store.hpp"
#include "images/descriptor.hpp"
#include "images/image.hpp"
#include "registry/client.hpp"
#include "registry/reference.hpp"

namespace kiln {

// One blob of a push: what it is, how to read it, and what is known of where its bytes are.
struct BlobUpload {
    Descriptor blob;
    BlobOpener open;
    std::string kind = "layer";           // names it in the log and in errors: "layer", "config"
    std::optional<Reference> mount_from;  // a repository of the destination's registry that may hold it
    BlobBytes bytes = BlobBytes::maybe_fetched;
};

struct TransferOptions {
    // Blobs moved at once (--transfer-jobs).
    size_t jobs = 4;
};

// Downloads into `store` each of `blobs` that it lacks, `options.jobs` at a time, each verified against its
// digest before the store publishes it. On failure, returns the error of the first failing blob in order.
// Returns the bytes downloaded.
Result<std::uint64_t> pull_blobs(RegistryClient& client, const Reference& repository,
                                 const std::vector<Descriptor>& blobs, const BlobStore& store,
                                 const TransferOptions& options = {});

struct PushOptions : TransferOptions {
    // Where a blob may already be on a destination's registry, by digest ("sha256:…"): the repository of the base
    // image it came from. A blob found there is mounted instead of uploaded.
    std::map<std::string, Reference> blob_origins;
    // Blobs known to be in a repository already (uploaded_blob_key): uploaded while the image was built.
    std::set<std::string> uploaded;
    // A manifest put that a registry refuses because the tag is immutable counts as done, with a warning.
    bool ignore_immutable_tag_errors = false;
};

// Whether `error`, from putting a manifest under a tag, is a registry's refusal to move an immutable tag (the
// wording of ECR, Artifact Registry, Harbor and Docker Hub, which share no error code for it).
bool is_immutable_tag_error(const Error& error);

// The repositories a push gives the bytes to: the first destination of each registry, in the order given. The
// other destinations on that registry mount the blobs from it.
std::vector<Reference> upload_repositories(const std::vector<Reference>& destinations);

// How PushOptions::uploaded names `digest` in `repository`: "registry/repository@sha256:…".
std::string uploaded_blob_key(const Reference& repository, const Digest& digest);

// An image's config, to push: at hand.
BlobUpload config_upload(const ImageDocuments& documents);

// Every blob of `image`, each once: its layers, mounted from their repository in `origins` (by digest) where
// they have one, then its config.
std::vector<BlobUpload> image_uploads(const Image& image, const ImageDocuments& documents,
                                      const std::map<std::string, Reference>& origins);

// Pushes one blob to `destination` (mounted from its `mount_from` when that repository has it) and logs what was
// done.
Status push_blob_logged(RegistryClient& client, const Reference& destination, const BlobUpload& upload);

// Pushes `image` to every destination: its layers and config, then its manifest, last, once every blob is in
// place. A blob is uploaded at most once per registry; other destinations on that registry mount it. Nothing is
// tagged when any blob fails.
Status push_image(RegistryClient& client, const std::vector<Reference>& destinations, const Image& image,
                  const ImageDocuments& documents, const PushOptions& options = {});

}  // namespace kiln
