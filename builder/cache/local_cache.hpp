#pragma once
// The layer cache in a local directory (<--cache-dir>/layers), which builds on one machine, or pods sharing a
// ReadWriteMany volume, use at the same time:
//   blobs/sha256/<hex>       the layers, each verified against its digest when stored and when looked up
//   verified/<hex>           a stamp: the blob was verified against its digest and a diffID, and has not
//                            changed since (the same inode, size and mtime), so a lookup need not read it
//   entries/<key hex>.json   the layer (descriptor and diff_id), or none, and when it was stored
//   steps/<identity hex>.json what a step read the last time it was built, to explain a miss
// Every write is atomic and durable (written, fsynced, renamed): a build killed at any moment leaves a cache
// the next build trusts, and a partial blob is removed when the cache is next opened.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "builder/cache/layer_cache.hpp"
#include "images/blob_store.hpp"

namespace kiln {

class LocalLayerCache final : public LayerCache {
public:
    // Opens (creating) the cache at `root`. Entries older than `ttl` are misses; `now` is the time that is
    // judged against.
    static Result<std::unique_ptr<LocalLayerCache>> open(const std::string& root, std::chrono::seconds ttl,
                                                         std::int64_t now);

    const char* name() const override { return "local"; }
    Result<std::optional<CachedStep>> lookup(const Digest& key) override;
    Status store(const Digest& key, const LayerPtr& layer) override;
    std::optional<KeyInputs> previous_inputs(const Digest& identity) override;
    Status record_inputs(const Digest& identity, const KeyInputs& inputs) override;
    // How many blobs lookups have read whole to verify them (the others had a valid stamp).
    std::uint64_t blobs_verified() const { return m_blobs_verified; }

private:
    LocalLayerCache(std::string root, BlobStore blobs, std::chrono::seconds ttl, std::int64_t now)
        : m_root(std::move(root)), m_blobs(std::move(blobs)), m_ttl(ttl), m_now(now) {}
    std::string entry_path(const Digest& key) const;
    Status store_blob(const Layer& layer);
    std::string stamp_path(const Digest& digest) const;
    // Writes the stamp of `digest`'s blob; a stamp that cannot be written costs the next lookup a read.
    void stamp(const Digest& digest, const std::string& identity);
    // verify_layer_blob, skipped when the blob's stamp says it was verified against `diff_id` and is unchanged.
    Status verify_blob(const Descriptor& descriptor, const Digest& diff_id);

    std::string m_root;
    BlobStore m_blobs;
    std::chrono::seconds m_ttl;
    std::int64_t m_now;
    std::atomic<std::uint64_t> m_blobs_verified{0};
};

}  // namespace kiln
