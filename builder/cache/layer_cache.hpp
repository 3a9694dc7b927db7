#pragma once
// Where cached step results are kept: behind one interface, a local directory (--cache-dir), a registry
// repository (--cache-repo), or both in turn. An entry maps a step's key to the layer the step made, or to "no layer"
// (WORKDIR of a directory that exists). Entries are data that may be stale, corrupted or hostile: a store
// returns only what it has verified, and treats everything else as a miss.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "builder/cache/key_inputs.hpp"
#include "common/error.hpp"
#include "images/layer.hpp"
#include "registry/reference.hpp"

namespace kiln {

// A hit.
struct CachedStep {
    LayerPtr layer;  // null when the step made no layer
    std::int64_t created = 0;  // when the entry was stored, seconds since the epoch
    const char* source = "";   // the name() of the cache that had it
};

class LayerCache {
public:
    virtual ~LayerCache() = default;
    // "local", "registry": how hits are named in the log.
    virtual const char* name() const = 0;
    // The entry for `key` when it is fresh and whole; nullopt on a miss. A broken or expired entry is a miss,
    // with a warning when it is broken.
    virtual Result<std::optional<CachedStep>> lookup(const Digest& key) = 0;
    // Keeps `layer` (null: the step made none) as the entry for `key`.
    virtual Status store(const Digest& key, const LayerPtr& layer) = 0;
    // What the step known as `identity` read the last time it was built, to explain a miss; nullopt when it
    // never was (or the record is unreadable).
    virtual std::optional<KeyInputs> previous_inputs(const Digest& identity) = 0;
    virtual Status record_inputs(const Digest& identity, const KeyInputs& inputs) = 0;
    // Waits for writes still under way (a registry's uploads); their failures were warnings.
    virtual void flush() {}
    // Where hits' blobs are on a registry, by digest: a push to that registry mounts them from there.
    virtual std::map<std::string, Reference> blob_origins() const { return {}; }
};

// Reads the blob at `path` once, checking both its digest and its uncompressed content's digest (the diffID):
// a cached layer is used only when both are what its entry claims.
Status verify_layer_blob(const std::string& path, const Descriptor& descriptor, const Digest& diff_id);

// Whether an entry stored at `created` is older than `ttl` at `now`; an entry from the future is not (a pod's
// clock may run ahead), and no value overflows.
bool expired(std::int64_t created, std::chrono::seconds ttl, std::int64_t now);

// Several caches in turn, nearest first (the local directory, then the registry): a lookup is served by the
// first that has the entry, and everything kept is kept in each.
class CacheChain final : public LayerCache {
public:
    explicit CacheChain(std::vector<std::unique_ptr<LayerCache>> caches) : m_caches(std::move(caches)) {}
    const char* name() const override { return "chain"; }
    Result<std::optional<CachedStep>> lookup(const Digest& key) override;
    Status store(const Digest& key, const LayerPtr& layer) override;
    std::optional<KeyInputs> previous_inputs(const Digest& identity) override;
    Status record_inputs(const Digest& identity, const KeyInputs& inputs) override;
    void flush() override;
    std::map<std::string, Reference> blob_origins() const override;

private:
    std::vector<std::unique_ptr<LayerCache>> m_caches;
};

}  // namespace kiln
