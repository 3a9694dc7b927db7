#pragma once
// The layer cache in a registry repository (--cache-repo), shared by every pod that reaches the registry:
//   <repo>:<key hex>              an entry: an image of the step's one layer (or of none), whose manifest's
//                                 annotations say when it was stored and the layer's diffID
//   <repo>:inputs-<identity hex>  what the step read when it was last built, to explain a later miss
// A lookup is one manifest request. A hit's layer is fetched only when the build reads it, and a push to the
// same registry mounts it from the cache repository. Writes run in the background while the build goes on, a few
// at once (each entry is several requests, and entries do not depend on each other);
// a failed write is a warning, and stops later ones. A registry that cannot be reached stops the lookups for
// the rest of the build, with one warning.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "builder/cache/layer_cache.hpp"
#include "images/blob_store.hpp"
#include "images/platform.hpp"
#include "registry/client.hpp"

namespace kiln {

struct RegistryCacheSettings {
    std::chrono::seconds ttl{0};  // older entries are misses
    std::int64_t now = 0;         // the time entries are judged against and stamped with
    bool push = true;             // false with --no-push-cache: lookups only
    Platform platform;            // written into entries' configs
    size_t writers = 1;           // entries written at once (--transfer-jobs)
};

class RegistryLayerCache final : public LayerCache {
public:
    // `client` and `store` (where fetched layers and entries' documents go) outlive the cache.
    RegistryLayerCache(RegistryClient& client, Reference repository, const BlobStore& store,
                       RegistryCacheSettings settings);
    // Waits for the writes still under way.
    ~RegistryLayerCache() override;

    const char* name() const override { return "registry"; }
    Result<std::optional<CachedStep>> lookup(const Digest& key) override;
    Status store(const Digest& key, const LayerPtr& layer) override;
    std::optional<KeyInputs> previous_inputs(const Digest& identity) override;
    Status record_inputs(const Digest& identity, const KeyInputs& inputs) override;
    void flush() override;
    std::map<std::string, Reference> blob_origins() const override;

private:
    struct Fetches;
    // Runs `write` on a writer thread; a failure is a warning, and the first one stops further writes.
    void enqueue(std::string what, std::function<Status()> write);
    void write_loop();
    // After a failed request: whether the registry answered (a refusal, warned about once) or cannot be
    // reached (warned about once; lookups stop).
    bool reachable(const Error& error);
    Status push_entry(const Digest& key, const LayerPtr& layer);
    Status push_inputs(const Digest& identity, const std::string& record);

    RegistryClient& m_client;
    Reference m_repository;
    const BlobStore& m_store;
    RegistryCacheSettings m_settings;
    std::shared_ptr<Fetches> m_fetches;

    mutable std::mutex m_mutex;
    bool m_off = false;             // the registry could not be reached: no more lookups
    bool m_refusal_reported = false;  // a lookup was refused (401, 403, …), and that was said once
    bool m_writes_failed = false;   // a write failed: later ones are skipped
    std::map<std::string, Reference> m_origins;
    std::deque<std::pair<std::string, std::function<Status()>>> m_queue;
    size_t m_busy = 0;              // queued or running writes
    size_t m_written = 0;
    size_t m_reported = 0;          // writes flush() has logged
    std::chrono::steady_clock::time_point m_first_write{};
    bool m_stopping = false;
    std::condition_variable m_changed;
    std::vector<std::thread> m_writers;
};

}  // namespace kiln
