#pragma once
// Base layers extracted once and kept across builds, under <--cache-dir>/extracted, the way containerd's
// snapshotter keeps them: each is a directory in overlay's on-disk format that every later build stacks
// read-only as an overlay lower, so a warm build extracts nothing. Below <root>/<variant> (the variant names the
// id mapping and ownership policy that the trees were made under, as a tree's owners depend on them):
//   <hex>/tree        the layer (hex: its diffID's), extracted
//   <hex>/entry.json  what the layer assumes of the layers below it, and its estimated size; its mtime is when
//                     a build last used the entry
//   <hex>.lock        flock: exclusive while the entry is extracted or evicted, shared while a build uses it
//   <hex>.partial     an extraction in progress, or one a killed build left: removed by the next build that
//                     locks <hex>
// An entry appears by rename once its files are on the disk (syncfs), so a build killed at any moment never
// leaves a half-extracted layer that a later build would use. The directory must be kiln's user's alone: a tree
// cannot be checked against its digest each time it is used.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "images/layer.hpp"
#include "layers/extract.hpp"

namespace kiln {

// The hidden command of the detached process that keeps layers a build extracted elsewhere:
// `kiln internal-keep-layers ROOT VARIANT OWNERSHIP MAX_BYTES [MEDIA_TYPE DIGEST DIFF_ID BLOB]...`.
inline constexpr const char* k_keep_layers_command = "internal-keep-layers";

// What the store gives a build for one layer.
struct StoredLayer {
    std::string tree;  // the layer directory, read-only
    LowerAssumptions assumptions;
};

// What one eviction pass did.
struct EvictionStats {
    std::uint64_t entries = 0;  // entries removed
    std::uint64_t bytes = 0;    // their estimated size
    std::uint64_t kept = 0;     // estimated size of what is left
};

class ExtractedLayerStore {
public:
    // Removes a directory the store has moved out of the way (an evicted entry, a killed extraction).
    using Discard = std::function<void(const std::string& path)>;

    // Opens (creating) the store at <root>/<variant>. It refuses a directory that someone else owns or that
    // others may write to. `discard` removes what the store drops (remove_tree when empty).
    static Result<std::unique_ptr<ExtractedLayerStore>> open(const std::string& root, const std::string& variant,
                                                             Discard discard = {});
    ExtractedLayerStore(const ExtractedLayerStore&) = delete;
    ExtractedLayerStore& operator=(const ExtractedLayerStore&) = delete;
    // Releases every entry this store holds.
    ~ExtractedLayerStore() = default;

    const std::string& directory() const { return m_dir; }

    // The entry of `layer`, extracted by this call if no build has made it yet (another build extracting it at
    // the same time is waited for). It stays held, and so safe from eviction, until release() or the store
    // is closed. nullopt: the layer cannot be kept, because its hardlinks reach into the layers below it, and
    // those differ from one stack to another; the caller extracts it for its own build.
    Result<std::optional<StoredLayer>> acquire(const Layer& layer, OwnershipFailure ownership_failure);

    // Lets go of every entry this store holds.
    void release();

    // Whether an entry for `layer` is there now.
    bool contains(const Layer& layer) const;
    // Notes `layer`, which the build extracted outside the store (in memory, say: faster than the disk), and
    // whose blob is a file, to be kept by keep_in_background().
    void keep_later(const Layer& layer);
    // Hands the layers noted by keep_later() to a detached kiln (k_keep_layers_command) that extracts each
    // into the store, then evicts past `max_bytes` (0: no bound). The build does not wait: a pod that ends
    // first leaves partial directories that the next build removes. Each blob is linked (or copied) into the
    // store first, as the build's own directory goes when it ends.
    void keep_in_background(OwnershipFailure ownership_failure, std::uint64_t max_bytes);

    // Removes entries that no build holds, least recently used first, until what is left is at most
    // `max_bytes` (by the sizes the entries recorded).
    Result<EvictionStats> evict(std::uint64_t max_bytes);

    // The estimated size of every entry.
    std::uint64_t size() const;

private:
    ExtractedLayerStore(std::string root, std::string variant, Discard discard)
        : m_dir(root + "/" + variant), m_discard(std::move(discard)), m_root(std::move(root)), m_variant(std::move(variant)) {}
    // Opens and locks <hex>.lock with `operation`; an empty fd when the file was replaced meanwhile (evicted).
    Result<UniqueFd> lock_entry(const std::string& hex, int operation) const;
    Result<StoredLayer> read_entry(const std::string& hex) const;
    // Moves the entry out of the way and has it discarded, under `lock` (its lock file, which this makes
    // exclusive and unlinks).
    Status drop_entry(const std::string& hex, UniqueFd lock) const;
    Status extract_entry(const std::string& hex, const Layer& layer, OwnershipFailure ownership_failure,
                         bool& keepable) const;

    std::string m_dir;
    Discard m_discard;
    std::string m_root;
    std::string m_variant;
    std::mutex m_mutex;
    std::vector<UniqueFd> m_held;  // shared locks on the entries in use
    struct ToKeep {
        Descriptor descriptor;
        Digest diff_id;
        std::string blob;
    };
    std::vector<ToKeep> m_to_keep;
};

// The detached process's work (k_keep_layers_command, with its arguments): extracts each layer into the store
// and removes its blob, then evicts. Returns the exit code.
int keep_layers(const std::vector<std::string>& args);

// The variant of the trees this process makes: its user namespace's id maps and the ownership policy. Trees
// made under one mapping have other owners under another.
std::string extracted_layer_variant(OwnershipFailure ownership_failure);

}  // namespace kiln
