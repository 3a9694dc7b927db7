#include "builder/cache/layer_cache.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

Result<std::optional<CachedStep>> CacheChain::lookup(const Digest& key) {
    for (const auto& cache : m_caches) {
        auto hit = cache->lookup(key);
        if (!hit) {
            log_warn("layer cache (", cache->name(), "): ", hit.error().message());
            continue;
        }
        if (*hit) return hit;
    }
    return std::nullopt;
}

Status CacheChain::store(const Digest& key, const LayerPtr& layer) {
    std::vector<std::string> failures;
    for (const auto& cache : m_caches)
        if (auto stored = cache->store(key, layer); !stored)
            failures.push_back(str_cat(cache->name(), ": ", stored.error().message()));
    if (!failures.empty()) return fail(join(failures, "; "));
    return {};
}

std::optional<KeyInputs> CacheChain::previous_inputs(const Digest& identity) {
    for (const auto& cache : m_caches)
        if (auto inputs = cache->previous_inputs(identity)) return inputs;
    return std::nullopt;
}

Status CacheChain::record_inputs(const Digest& identity, const KeyInputs& inputs) {
    std::vector<std::string> failures;
    for (const auto& cache : m_caches)
        if (auto recorded = cache->record_inputs(identity, inputs); !recorded)
            failures.push_back(str_cat(cache->name(), ": ", recorded.error().message()));
    if (!failures.empty()) return fail(join(failures, "; "));
    return {};
}

void CacheChain::flush() {
    for (const auto& cache : m_caches) cache->flush();
}

std::map<std::string, Reference> CacheChain::blob_origins() const {
    std::map<std::string, Reference> origins;
    for (const auto& cache : m_caches) origins.merge(cache->blob_origins());
    return origins;
}

}  // namespace kiln
