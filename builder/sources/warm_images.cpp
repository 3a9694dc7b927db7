#include "builder/sources/warm_images.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "images/media_type.hpp"

namespace kiln {
namespace {

using nlohmann::json;

constexpr size_t k_max_record_size = 64 << 10;

}  // namespace

Result<WarmImages> WarmImages::open(const std::string& directory) {
    KILN_TRY(make_directories(directory + "/refs", 0755));
    KILN_ASSIGN(BlobStore blobs, BlobStore::open(directory));
    return WarmImages(directory, std::move(blobs));
}

std::string WarmImages::ref_path(const std::string& name, const Platform& platform) const {
    return str_cat(m_directory, "/refs/", Digest::of_bytes(str_cat(platform.str(), " ", name)).encoded(), ".json");
}

std::optional<WarmedImage> WarmImages::find(const std::string& name, const Platform& platform) const {
    std::string path = ref_path(name, platform);
    if (!path_exists(path)) return std::nullopt;
    auto text = read_file(path, k_max_record_size);
    if (!text) return std::nullopt;
    json record = json::parse(*text, nullptr, false);
    if (!record.is_object()) return std::nullopt;
    auto string_field = [&](const char* key) -> std::optional<std::string> {
        if (!record.contains(key) || !record[key].is_string()) return std::nullopt;
        return record[key].get<std::string>();
    };
    auto recorded_name = string_field("name");
    auto recorded_platform = string_field("platform");
    auto resolved = string_field("resolved");
    auto media_type = string_field("mediaType");
    auto digest_text = string_field("digest");
    if (!recorded_name || *recorded_name != name || !recorded_platform || *recorded_platform != platform.str() ||
        !resolved || !media_type || !is_manifest_media_type(*media_type) || !digest_text ||
        !record.contains("size") || !record["size"].is_number_integer() || !record.contains("warmed") ||
        !record["warmed"].is_number_integer())
        return std::nullopt;
    auto digest = Digest::parse(*digest_text);
    if (!digest) return std::nullopt;
    return WarmedImage{.name = name,
                       .resolved = *resolved,
                       .manifest = Descriptor{.media_type = *media_type,
                                              .digest = *digest,
                                              .size = record["size"].get<std::int64_t>()},
                       .warmed = record["warmed"].get<std::int64_t>()};
}

Status WarmImages::record(const std::string& name, const Platform& platform, const WarmedImage& image) const {
    json record = {{"name", name},
                   {"platform", platform.str()},
                   {"resolved", image.resolved},
                   {"mediaType", image.manifest.media_type},
                   {"digest", image.manifest.digest.str()},
                   {"size", image.manifest.size},
                   {"warmed", image.warmed}};
    return write_file_durable(ref_path(name, platform), record.dump());
}

Result<UniqueFd> WarmImages::open_verified(const Descriptor& blob) const {
    std::string path = m_blobs.path(blob.digest);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) return fail_errno(str_cat("open ", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno(str_cat("stat ", path));
    if (!S_ISREG(st.st_mode)) return fail(str_cat(path, " is not a regular file"));
    if (st.st_size != blob.size)
        return fail(str_cat(path, " has ", st.st_size, " bytes, not the ", blob.size, " of ", blob.digest.str()));
    FdReader file(fd.get(), path);
    HashingReader hashed(file);
    std::vector<char> buffer(1 << 16);
    std::uint64_t size = 0;
    while (size <= static_cast<std::uint64_t>(blob.size)) {
        KILN_ASSIGN(size_t n, hashed.read(buffer.data(), buffer.size()));
        if (n == 0) break;
        size += n;
    }
    if (size != static_cast<std::uint64_t>(blob.size) || hashed.finish_digest() != blob.digest.str())
        return fail(str_cat(path, " does not match its digest ", blob.digest.str()));
    return fd;
}

Status WarmImages::put(const Descriptor& descriptor, std::string_view bytes) const {
    if (Digest::of_bytes(bytes) != descriptor.digest)
        return fail(str_cat("the document does not match its digest ", descriptor.digest.str()));
    // Kept already and intact: nothing to do. A damaged copy is replaced.
    if (m_blobs.contains(descriptor.digest) && verify(descriptor)) return {};
    KILN_ASSIGN(BlobIngest ingest, m_blobs.begin());
    KILN_TRY(ingest.write(bytes.data(), bytes.size()));
    KILN_TRY(ingest.sync());
    KILN_TRY(ingest.commit(descriptor.digest));
    return sync_directory(parent_path(m_blobs.path(descriptor.digest)));
}

Status WarmImages::sync(const Digest& digest) const {
    std::string path = m_blobs.path(digest);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", path));
    if (::fsync(fd.get()) != 0) return fail_errno(str_cat("fsync ", path));
    return sync_directory(parent_path(path));
}

}  // namespace kiln
