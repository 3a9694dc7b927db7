#include "builder/cache/local_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "images/media_type.hpp"
#include "layers/compression.hpp"

namespace kiln {
namespace {

using nlohmann::json;

constexpr size_t k_max_entry_size = 64 << 10;
constexpr size_t k_max_record_size = 16 << 20;
constexpr size_t k_max_stamp_size = 512;

// What a blob file is now, as a verification stamp records it with the diffID its content was checked
// against: a write changes its mtime (or its inode, when the file is replaced). ctime would be stricter but
// changes with every hard link, and kiln links cached blobs to hand them to the process that keeps layers
// extracted. Setting an mtime back takes a writer who means to, and such a writer can as well write an entry
// whose blob and digests agree: verification guards against accidents, not against whoever owns the cache.
std::optional<struct stat> regular_file_stat(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return st;
}

std::string blob_identity(const struct stat& st, const Digest& diff_id) {
    return str_cat(diff_id.str(), " ", st.st_dev, " ", st.st_ino, " ", st.st_size, " ", st.st_mtim.tv_sec, " ",
                   st.st_mtim.tv_nsec, "\n");
}

// Whether the file was last written before the clock's last few ticks (as git treats racily clean files): a write
// in the same tick as a check would leave the mtime as it was.
bool written_a_while_ago(const struct stat& st) {
    struct timespec now;
    return ::clock_gettime(CLOCK_REALTIME, &now) == 0 && st.st_mtim.tv_sec + 2 < now.tv_sec;
}

}  // namespace

Result<std::unique_ptr<LocalLayerCache>> LocalLayerCache::open(const std::string& root, std::chrono::seconds ttl,
                                                              std::int64_t now) {
    KILN_TRY(make_directories(root + "/entries", 0755));
    KILN_TRY(make_directories(root + "/steps", 0755));
    KILN_ASSIGN(BlobStore blobs, BlobStore::open(root));
    return std::unique_ptr<LocalLayerCache>(new LocalLayerCache(root, std::move(blobs), ttl, now));
}

std::string LocalLayerCache::entry_path(const Digest& key) const {
    return str_cat(m_root, "/entries/", key.encoded(), ".json");
}

Result<std::optional<CachedStep>> LocalLayerCache::lookup(const Digest& key) {
    std::string path = entry_path(key);
    if (!path_exists(path)) return std::nullopt;
    auto miss = [&](const std::string& why) -> Result<std::optional<CachedStep>> {
        log_warn("layer cache ", m_root, ": the entry for ", key.short_str(), " is not used: ", why);
        return std::nullopt;
    };
    auto text = read_file(path, k_max_entry_size);
    if (!text) return miss(text.error().message());
    json entry = json::parse(*text, nullptr, false);
    if (!entry.is_object() || !entry.contains("created") || !entry["created"].is_number_integer() ||
        !entry.contains("layer"))
        return miss("it is malformed");
    std::int64_t created = entry["created"].get<std::int64_t>();
    if (expired(created, m_ttl, m_now)) {
        log_debug("layer cache: the entry for ", key.short_str(), " has expired (--cache-ttl)");
        return std::nullopt;
    }
    if (entry["layer"].is_null()) return CachedStep{.layer = nullptr, .created = created, .source = name()};
    const json& layer = entry["layer"];
    if (!layer.is_object() || !layer.contains("mediaType") || !layer.contains("digest") || !layer.contains("size") ||
        !layer.contains("diffID") || !layer["mediaType"].is_string() || !layer["digest"].is_string() ||
        !layer["diffID"].is_string() || !layer["size"].is_number_integer())
        return miss("its layer is malformed");
    auto digest = Digest::parse(layer["digest"].get<std::string>());
    auto diff_id = Digest::parse(layer["diffID"].get<std::string>());
    if (!digest || !diff_id) return miss("its layer's digests are malformed");
    Descriptor descriptor{.media_type = layer["mediaType"].get<std::string>(),
                          .digest = *digest,
                          .size = layer["size"].get<std::int64_t>()};
    if (!is_layer_media_type(descriptor.media_type)) return miss("its media type is not a layer's");
    if (!m_blobs.contains(*digest)) return miss("its layer's blob is missing");
    auto size = m_blobs.size(*digest);
    if (!size || static_cast<std::int64_t>(*size) != descriptor.size) return miss("its layer's blob has the wrong size");
    if (auto verified = verify_blob(descriptor, *diff_id); !verified) return miss(verified.error().message());
    return CachedStep{.layer = std::make_shared<FileLayer>(descriptor, *diff_id, m_blobs.path(*digest)),
                      .created = created,
                      .source = name()};
}

std::string LocalLayerCache::stamp_path(const Digest& digest) const {
    return str_cat(m_root, "/verified/", digest.encoded());
}

void LocalLayerCache::stamp(const Digest& digest, const std::string& identity) {
    // Made here, not when the cache is opened: a cache directory that kiln may only read still serves, unstamped.
    if (make_directories(m_root + "/verified", 0755)) (void)write_file_atomic(stamp_path(digest), identity);
}

Status LocalLayerCache::verify_blob(const Descriptor& descriptor, const Digest& diff_id) {
    std::string path = m_blobs.path(descriptor.digest);
    std::optional<struct stat> before = regular_file_stat(path);
    std::string identity = before ? blob_identity(*before, diff_id) : std::string();
    if (before) {
        auto stamp = read_file(stamp_path(descriptor.digest), k_max_stamp_size);
        if (stamp && *stamp == identity) return {};
    }
    ++m_blobs_verified;
    KILN_TRY(verify_layer_blob(path, descriptor, diff_id));
    // Stamped only if the file did not change while it was read, and not racily: a stamp that cannot be written
    // costs the next lookup a read.
    std::optional<struct stat> after = regular_file_stat(path);
    if (before && after && blob_identity(*after, diff_id) == identity && written_a_while_ago(*before))
        stamp(descriptor.digest, identity);
    return {};
}

Status LocalLayerCache::store_blob(const Layer& layer) {
    const Descriptor& descriptor = layer.descriptor();
    if (m_blobs.contains(descriptor.digest)) return {};
    KILN_ASSIGN(BlobIngest ingest, m_blobs.begin());
    KILN_ASSIGN(auto blob, layer.open_blob());
    KILN_TRY(copy_stream(*blob, ingest));
    KILN_TRY(ingest.sync());
    KILN_TRY(ingest.commit(descriptor.digest));
    KILN_TRY(sync_directory(parent_path(m_blobs.path(descriptor.digest))));
    // The build wrote this layer, and its diffID is the one it computed: stamped as verified.
    if (auto st = regular_file_stat(m_blobs.path(descriptor.digest)))
        stamp(descriptor.digest, blob_identity(*st, layer.diff_id()));
    return {};
}

Status LocalLayerCache::store(const Digest& key, const LayerPtr& layer) {
    json entry = {{"created", m_now}, {"layer", nullptr}};
    if (layer) {
        KILN_TRY(store_blob(*layer));
        const Descriptor& descriptor = layer->descriptor();
        entry["layer"] = {{"mediaType", descriptor.media_type},
                          {"digest", descriptor.digest.str()},
                          {"size", descriptor.size},
                          {"diffID", layer->diff_id().str()}};
    }
    // The blob is durable before the entry that names it becomes visible.
    return write_file_durable(entry_path(key), entry.dump());
}

std::optional<KeyInputs> LocalLayerCache::previous_inputs(const Digest& identity) {
    std::string path = str_cat(m_root, "/steps/", identity.encoded(), ".json");
    if (!path_exists(path)) return std::nullopt;
    auto text = read_file(path, k_max_record_size);
    if (!text) return std::nullopt;
    json record = json::parse(*text, nullptr, false);
    if (record.is_discarded()) return std::nullopt;
    auto inputs = KeyInputs::from_json(record);
    if (!inputs) return std::nullopt;
    return std::move(*inputs);
}

Status LocalLayerCache::record_inputs(const Digest& identity, const KeyInputs& inputs) {
    return write_file_atomic(str_cat(m_root, "/steps/", identity.encoded(), ".json"), inputs.to_json().dump());
}

}  // namespace kiln
