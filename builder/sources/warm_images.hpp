#pragma once
// Base images warmed by `kiln warm` in <--cache-dir>/images, for builds in pods that start with nothing:
//   blobs/sha256/<hex>     manifests, configs and layers, each verified against its digest before it is kept
//   refs/<hex>.json        a name and platform as a Dockerfile says them (a tag or a digest): the manifest it
//                          resolved to, and when
// A build takes a warmed blob instead of downloading it (checking it against its digest first), and when a
// base's registry cannot be reached it uses the warmed tag, saying when it was warmed. Every write is atomic
// and durable, so pods warming and reading one volume at once, or killed, leave it consistent.

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "images/blob_store.hpp"
#include "images/descriptor.hpp"
#include "images/platform.hpp"

namespace kiln {

// A warmed name.
struct WarmedImage {
    std::string name;      // as asked for
    std::string resolved;  // "registry/repository@sha256:…" (the image manifest, for the platform)
    Descriptor manifest;   // the image manifest (never an index)
    std::int64_t warmed = 0;  // when the name was resolved, seconds since the epoch
};

class WarmImages {
public:
    // Opens (creating) the store in `directory`.
    static Result<WarmImages> open(const std::string& directory);

    const std::string& directory() const { return m_directory; }
    const BlobStore& blobs() const { return m_blobs; }

    // The record for `name` on `platform`, or nullopt when it was never warmed or the record is unreadable.
    std::optional<WarmedImage> find(const std::string& name, const Platform& platform) const;
    // Records `image` as what `name` on `platform` resolved to; its manifest and config must be stored already.
    Status record(const std::string& name, const Platform& platform, const WarmedImage& image) const;

    // Whether the blob is kept (not whether it is intact).
    bool contains(const Digest& digest) const { return m_blobs.contains(digest); }
    // Reads the blob whole, checking its size and digest: it is the blob only if it passes. Only a regular
    // file is read (not a link, a FIFO or a device), and no more than its size.
    Status verify(const Descriptor& blob) const {
        KILN_TRY(open_verified(blob));
        return {};
    }
    // The same, returning the file verified, to be used rather than its name.
    Result<UniqueFd> open_verified(const Descriptor& blob) const;
    // Keeps a small document (manifest, config) durably, checked against `descriptor`.
    Status put(const Descriptor& descriptor, std::string_view bytes) const;
    // Flushes a blob already in the store to the disk.
    Status sync(const Digest& digest) const;

private:
    WarmImages(std::string directory, BlobStore blobs) : m_directory(std::move(directory)), m_blobs(std::move(blobs)) {}
    std::string ref_path(const std::string& name, const Platform& platform) const;

    std::string m_directory;
    BlobStore m_blobs;
};

}  // namespace kiln
