#pragma once
// A content-addressed directory of blobs (<root>/blobs/sha256/<hex>): layers, configs and manifests that a
// build pulled or produced. A blob becomes visible only after its digest has been verified.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/stream.hpp"
#include "images/digest.hpp"

namespace kiln {

class BlobStore;

// How an ingest learns its blob's digest: by hashing what is written to it (any blob from outside), or from the
// writer, which hashed the same bytes as it produced them (a layer kiln writes: write_layer's digest). The
// second spares a second SHA-256 pass over every layer.
enum class IngestDigest { hashed, from_writer };

// A blob being written. commit() verifies it and publishes it; destroyed uncommitted, it is discarded.
class BlobIngest final : public RewindableWriter {
public:
    BlobIngest(BlobIngest&&) noexcept = default;
    Writer& writer() { return *this; }
    using Writer::write;
    Status write(const char* buffer, size_t size) override;
    // Empties the file, for a download that starts over.
    Status rewind() override;
    std::uint64_t size() const { return m_size; }
    // Flushes the bytes to the disk, for a store that must survive a crash (the layer cache).
    Status sync() { return m_file.sync(); }
    // Publishes the blob. With `expected`, a different digest is refused (the error names both digests) and the
    // partial file is removed at once. IngestDigest::from_writer: `expected` is the digest, and is required.
    // Call once.
    Result<Digest> commit(const std::optional<Digest>& expected = std::nullopt);

private:
    friend class BlobStore;
    BlobIngest(std::string store_root, AtomicFile file, IngestDigest digest);
    // The store's root, not a pointer to it: an ingest may outlive the BlobStore object it came from.
    std::string m_store_root;
    AtomicFile m_file;
    IngestDigest m_digest;
    Sha256 m_hash;
    std::uint64_t m_size = 0;
};

class BlobStore {
public:
    // Opens (creating if needed) a store rooted at `root`.
    static Result<BlobStore> open(const std::string& root);

    const std::string& root() const { return m_root; }
    std::string path(const Digest& digest) const;
    bool contains(const Digest& digest) const;
    // Size of a stored blob.
    Result<std::uint64_t> size(const Digest& digest) const;

    Result<BlobIngest> begin(IngestDigest digest = IngestDigest::hashed) const;
    // Stores bytes already in memory (configs, manifests).
    Result<Digest> put(std::string_view bytes) const;
    Result<UniqueFd> open_blob(const Digest& digest) const;
    // Reads a small blob (a manifest or config), refusing more than `limit` bytes.
    Result<std::string> read(const Digest& digest, size_t limit = 4 << 20) const;

private:
    friend class BlobIngest;
    explicit BlobStore(std::string root) : m_root(std::move(root)) {}
    std::string m_root;
};

}  // namespace kiln
