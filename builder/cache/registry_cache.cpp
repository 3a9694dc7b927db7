#include "builder/cache/registry_cache.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>

#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/image.hpp"
#include "images/manifest.hpp"
#include "registry/transfer.hpp"

namespace kiln {
namespace {

using nlohmann::json;

constexpr std::string_view k_created_annotation = "dev.kiln.cache.created";
constexpr std::string_view k_diff_id_annotation = "dev.kiln.cache.diff-id";
constexpr std::string_view k_inputs_media_type = "application/vnd.dev.kiln.step-inputs.v1+json";
constexpr std::int64_t k_max_inputs_size = 16 << 20;

std::string inputs_tag(const Digest& identity) { return str_cat("inputs-", identity.encoded()); }

}  // namespace

// Each hit's layer is fetched at most once, however many steps and threads read it.
struct RegistryLayerCache::Fetches {
    std::mutex mutex;
    std::map<std::string, std::shared_ptr<std::pair<std::mutex, std::optional<Status>>>> by_digest;
};

RegistryLayerCache::RegistryLayerCache(RegistryClient& client, Reference repository, const BlobStore& store,
                                       RegistryCacheSettings settings)
    : m_client(client),
      m_repository(std::move(repository)),
      m_store(store),
      m_settings(std::move(settings)),
      m_fetches(std::make_shared<Fetches>()) {
    if (m_settings.push)
        for (size_t i = 0; i < std::max<size_t>(m_settings.writers, 1); ++i)
            m_writers.emplace_back([this] { write_loop(); });
}

RegistryLayerCache::~RegistryLayerCache() {
    flush();
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_changed.notify_all();
    for (std::thread& writer : m_writers) writer.join();
}

bool RegistryLayerCache::reachable(const Error& error) {
    std::lock_guard lock(m_mutex);
    // A registry that does not answer (or keeps answering 5xx) is not asked again; a refusal (401, 403, a
    // repository that does not exist yet) is a miss, and the writes that create the repository go on.
    if (error.retryable()) {
        if (!m_off)
            log_warn("layer cache ", m_repository.name(), ": ", error.message(),
                     "; the build goes on without looking in the registry cache");
        m_off = true;
        return false;
    }
    if (!m_refusal_reported)
        log_warn("layer cache ", m_repository.name(), ": ", error.message(), "; such lookups count as misses");
    m_refusal_reported = true;
    return true;
}

Result<std::optional<CachedStep>> RegistryLayerCache::lookup(const Digest& key) {
    {
        std::lock_guard lock(m_mutex);
        if (m_off) return std::nullopt;
    }
    KILN_ASSIGN(Reference reference, m_repository.with_tag(key.encoded()));
    auto found = m_client.find_manifest(reference);
    if (!found) {
        reachable(found.error());
        return std::nullopt;
    }
    if (!*found) return std::nullopt;
    auto miss = [&](const std::string& why) -> Result<std::optional<CachedStep>> {
        log_warn("layer cache ", reference.str(), ": the entry is not used: ", why);
        return std::nullopt;
    };
    auto manifest = Manifest::parse((*found)->bytes);
    if (!manifest) return miss(manifest.error().message());
    const auto& annotations = manifest->annotations;
    auto created_text = annotations.find(std::string(k_created_annotation));
    std::uint64_t created_value = 0;
    if (created_text == annotations.end() || !parse_uint64(created_text->second, created_value) ||
        created_value > static_cast<std::uint64_t>(INT64_MAX))
        return miss(str_cat("it has no valid ", k_created_annotation, " annotation"));
    std::optional<std::int64_t> created = static_cast<std::int64_t>(created_value);
    if (expired(*created, m_settings.ttl, m_settings.now)) {
        log_debug("layer cache: the entry ", reference.str(), " has expired (--cache-ttl)");
        return std::nullopt;
    }
    if (manifest->layers.empty()) return CachedStep{.layer = nullptr, .created = *created, .source = name()};
    if (manifest->layers.size() > 1) return miss("it has more than one layer");
    const Descriptor& descriptor = manifest->layers.front();
    if (!is_layer_media_type(descriptor.media_type)) return miss(str_cat("its media type ", descriptor.media_type, " is not a layer's"));
    auto diff_id_text = annotations.find(std::string(k_diff_id_annotation));
    if (diff_id_text == annotations.end()) return miss(str_cat("it has no ", k_diff_id_annotation, " annotation"));
    auto diff_id = Digest::parse(diff_id_text->second);
    if (!diff_id || diff_id->algorithm() != "sha256" || descriptor.digest.algorithm() != "sha256")
        return miss("its digests are malformed or not sha256");
    // The blob must still be there (a retention policy may have deleted it): a push mounts it from here.
    auto present = m_client.blob_exists(m_repository, descriptor.digest);
    if (!present) {
        reachable(present.error());
        return std::nullopt;
    }
    if (!*present) return miss(str_cat("its layer ", descriptor.digest.str(), " is not in the repository"));
    {
        std::lock_guard lock(m_mutex);
        m_origins.emplace(descriptor.digest.str(), m_repository);
    }
    // The blob is fetched the first time the build reads it, and verified then: its digest, and its content
    // against the diffID the entry claims.
    auto fetch = [fetches = m_fetches, &client = m_client, repository = m_repository, &store = m_store,
                  descriptor, diff_id = *diff_id]() -> Status {
        std::shared_ptr<std::pair<std::mutex, std::optional<Status>>> once;
        {
            std::lock_guard lock(fetches->mutex);
            auto& entry = fetches->by_digest[descriptor.digest.str()];
            if (!entry) entry = std::make_shared<std::pair<std::mutex, std::optional<Status>>>();
            once = entry;
        }
        std::lock_guard lock(once->first);
        if (!once->second) {
            once->second = [&]() -> Status {
                std::string what = str_cat("layer cache ", repository.name(), ": the cached layer ",
                                           descriptor.digest.str());
                KILN_TRY_CONTEXT(pull_blobs(client, repository, {descriptor}, store), what);
                KILN_TRY_CONTEXT(verify_layer_blob(store.path(descriptor.digest), descriptor, diff_id), what);
                return {};
            }();
        }
        return *once->second;
    };
    LayerPtr layer = std::make_shared<FetchedLayer>(descriptor, *diff_id, m_store.path(descriptor.digest), fetch);
    return CachedStep{.layer = std::move(layer), .created = *created, .source = name()};
}

std::optional<KeyInputs> RegistryLayerCache::previous_inputs(const Digest& identity) {
    {
        std::lock_guard lock(m_mutex);
        if (m_off) return std::nullopt;
    }
    auto reference = m_repository.with_tag(inputs_tag(identity));
    if (!reference) return std::nullopt;
    auto found = m_client.find_manifest(*reference);
    if (!found) {
        reachable(found.error());
        return std::nullopt;
    }
    if (!*found) return std::nullopt;
    auto manifest = Manifest::parse((*found)->bytes);
    if (!manifest || manifest->config.media_type != k_inputs_media_type || manifest->config.size > k_max_inputs_size)
        return std::nullopt;
    StringWriter bytes;
    if (!m_client.fetch_blob(m_repository, manifest->config, bytes)) return std::nullopt;
    json record = json::parse(bytes.take(), nullptr, false);
    if (record.is_discarded()) return std::nullopt;
    auto inputs = KeyInputs::from_json(record);
    if (!inputs) return std::nullopt;
    return std::move(*inputs);
}

Status RegistryLayerCache::store(const Digest& key, const LayerPtr& layer) {
    enqueue(str_cat("the entry for ", key.short_str()), [this, key, layer] { return push_entry(key, layer); });
    return {};
}

Status RegistryLayerCache::record_inputs(const Digest& identity, const KeyInputs& inputs) {
    enqueue(str_cat("what step ", identity.short_str(), " read"),
            [this, identity, record = inputs.to_json().dump()] { return push_inputs(identity, record); });
    return {};
}

Status RegistryLayerCache::push_entry(const Digest& key, const LayerPtr& layer) {
    Image image = Image::empty(m_settings.platform);
    if (layer) image = image.with_layer(layer, History{.created = format_rfc3339(m_settings.now), .created_by = {}});
    ImageConfig config = image.config();
    config.created = format_rfc3339(m_settings.now);
    image = image.with_config(std::move(config));
    KILN_ASSIGN(ImageDocuments documents, write_image_documents(image, ManifestFormat::oci, m_store));
    if (layer) {
        // The layers of entries are this build's own, in its store.
        KILN_TRY(m_client.push_blob(m_repository, layer->descriptor(), [layer] { return layer->open_blob(); },
                                    std::nullopt, BlobBytes::at_hand));
        // Uploaded: a push of the final image to this registry that comes later mounts it from here.
        std::lock_guard lock(m_mutex);
        m_origins.emplace(layer->descriptor().digest.str(), m_repository);
    }
    StringReader config_bytes(documents.config_bytes);
    KILN_TRY(m_client.push_blob(m_repository, documents.config, config_bytes));
    Manifest manifest = documents.parsed_manifest;
    manifest.annotations[std::string(k_created_annotation)] = std::to_string(m_settings.now);
    if (layer) manifest.annotations[std::string(k_diff_id_annotation)] = layer->diff_id().str();
    KILN_ASSIGN(Reference reference, m_repository.with_tag(key.encoded()));
    KILN_TRY(m_client.push_manifest(reference, manifest_media_type(ManifestFormat::oci), manifest.serialize()));
    return {};
}

Status RegistryLayerCache::push_inputs(const Digest& identity, const std::string& record) {
    Descriptor config{.media_type = std::string(k_inputs_media_type),
                      .digest = Digest::of_bytes(record),
                      .size = static_cast<std::int64_t>(record.size())};
    StringReader bytes(record);
    KILN_TRY(m_client.push_blob(m_repository, config, bytes));
    Manifest manifest{.media_type = std::string(manifest_media_type(ManifestFormat::oci)), .config = config};
    KILN_ASSIGN(Reference reference, m_repository.with_tag(inputs_tag(identity)));
    KILN_TRY(m_client.push_manifest(reference, manifest.media_type, manifest.serialize()));
    return {};
}

void RegistryLayerCache::enqueue(std::string what, std::function<Status()> write) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_settings.push || m_writes_failed) return;
        if (m_written == m_reported && m_busy == 0) m_first_write = std::chrono::steady_clock::now();
        m_queue.emplace_back(std::move(what), std::move(write));
        ++m_busy;
    }
    m_changed.notify_all();
}

void RegistryLayerCache::write_loop() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_changed.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
        if (m_queue.empty()) return;
        auto [what, write] = std::move(m_queue.front());
        m_queue.pop_front();
        bool skip = m_writes_failed;
        lock.unlock();
        Status written;
        try {
            if (!skip) written = write();
        } catch (const std::exception& e) {
            written = fail(str_cat("internal error: ", e.what()));
        }
        lock.lock();
        if (!written && !m_writes_failed) {
            m_writes_failed = true;
            log_warn("layer cache ", m_repository.name(), ": storing ", what, " failed: ", written.error().message(),
                     "; the build goes on without storing more");
        } else if (written && !skip) {
            ++m_written;
        }
        --m_busy;
        m_changed.notify_all();
    }
}

void RegistryLayerCache::flush() {
    std::unique_lock lock(m_mutex);
    if (m_busy > 0) {
        log_info("layer cache ", m_repository.name(), ": waiting for ", m_busy, " upload(s)");
        m_changed.wait(lock, [&] { return m_busy == 0; });
    }
    if (m_written > m_reported) {
        log_info("layer cache ", m_repository.name(), ": ", m_written - m_reported, " upload(s) in ",
                 format_seconds(seconds_since(m_first_write), 2), " s");
        m_reported = m_written;
    }
}

std::map<std::string, Reference> RegistryLayerCache::blob_origins() const {
    std::lock_guard lock(m_mutex);
    return m_origins;
}

}  // namespace kiln
