#include "builder/cache/layer_cache.hpp"

#include <fcntl.h>

#include <cstdint>
#include <vector>

#include "common/fd.hpp"
#include "common/stream.hpp"
#include "layers/compression.hpp"

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

Status verify_layer_blob(const std::string& path, const Descriptor& descriptor, const Digest& diff_id) {
    if (descriptor.digest.algorithm() != "sha256" || diff_id.algorithm() != "sha256")
        return fail("only sha256 digests can be verified");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return fail_errno(str_cat("open ", path));
    FdReader file(fd.get(), path);
    HashingReader blob_hash(file);
    KILN_ASSIGN(auto tar, make_auto_decompressor(blob_hash));
    HashingReader tar_hash(*tar);
    std::vector<char> buffer(1 << 16);
    while (true) {
        KILN_ASSIGN(size_t n, tar_hash.read(buffer.data(), buffer.size()));
        if (n == 0) break;
    }
    if (blob_hash.finish_digest() != descriptor.digest.str())
        return fail(str_cat("its blob does not match its digest ", descriptor.digest.str()));
    if (tar_hash.finish_digest() != diff_id.str())
        return fail(str_cat("its blob's content does not match its diffID ", diff_id.str()));
    return {};
}

bool expired(std::int64_t created, std::chrono::seconds ttl, std::int64_t now) {
    if (created >= now) return false;
    // now - created cannot overflow once both are ordered and created is not below INT64_MIN + now.
    if (created < 0 && now > INT64_MAX + created) return true;
    return now - created > ttl.count();
}

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

namespace {

// Calls `write` on every cache, even after one fails; the error lists each failure with its cache's name.
template <class Write>
Status write_each(const std::vector<std::unique_ptr<LayerCache>>& caches, Write write) {
    std::vector<std::string> failures;
    for (const auto& cache : caches)
        if (Status written = write(*cache); !written)
            failures.push_back(str_cat(cache->name(), ": ", written.error().message()));
    if (!failures.empty()) return fail(join(failures, "; "));
    return {};
}

}  // namespace

Status CacheChain::store(const Digest& key, const LayerPtr& layer) {
    return write_each(m_caches, [&](LayerCache& cache) { return cache.store(key, layer); });
}

std::optional<KeyInputs> CacheChain::previous_inputs(const Digest& identity) {
    for (const auto& cache : m_caches)
        if (auto inputs = cache->previous_inputs(identity)) return inputs;
    return std::nullopt;
}

Status CacheChain::record_inputs(const Digest& identity, const KeyInputs& inputs) {
    return write_each(m_caches, [&](LayerCache& cache) { return cache.record_inputs(identity, inputs); });
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
