#include "images/oci_layout.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/layer.hpp"
#include "images/media_type.hpp"

namespace kiln {
namespace {

constexpr std::string_view k_layout_version = "1.0.0";

enum class LayoutState { fresh, existing };

bool is_alphanumeric(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// component ::= alphanum (separator alphanum)*, separator ::= [-._:@+] | "--"
bool valid_ref_component(std::string_view component) {
    size_t i = 0;
    auto alphanumeric_run = [&] {
        size_t start = i;
        while (i < component.size() && is_alphanumeric(component[i])) ++i;
        return i > start;
    };
    if (!alphanumeric_run()) return false;
    while (i < component.size()) {
        if (component.substr(i, 2) == "--")
            i += 2;
        else if (std::string_view("-._:@+").find(component[i]) != std::string_view::npos)
            ++i;
        else
            return false;
        if (!alphanumeric_run()) return false;
    }
    return true;
}

Result<bool> directory_is_empty(const std::string& directory) {
    std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(directory.c_str()), ::closedir);
    if (!handle) return fail_errno(str_cat("open directory ", directory));
    errno = 0;
    while (dirent* entry = ::readdir(handle.get())) {
        std::string_view name = entry->d_name;
        if (name != "." && name != "..") return false;
    }
    if (errno != 0) return fail_errno(str_cat("read directory ", directory));
    return true;
}

// Decides what `directory` is before anything is written into it.
Result<LayoutState> inspect_directory(const std::string& directory) {
    struct stat st;
    if (::stat(directory.c_str(), &st) != 0) {
        if (errno != ENOENT) return fail_errno(str_cat("stat ", directory));
        KILN_TRY(make_directories(directory));
        return LayoutState::fresh;
    }
    if (!S_ISDIR(st.st_mode)) return fail(str_cat(directory, " exists and is not a directory"));
    std::string layout_file = directory + "/oci-layout";
    if (path_exists(layout_file)) {
        KILN_ASSIGN(std::string bytes, read_file(layout_file, 64 << 10));
        KILN_ASSIGN(nlohmann::json header, parse_json_document(bytes, layout_file));
        if (!header.is_object() || !header.contains("imageLayoutVersion") || !header["imageLayoutVersion"].is_string())
            return fail(str_cat(layout_file, " has no imageLayoutVersion"));
        std::string version = header["imageLayoutVersion"].get<std::string>();
        if (version != k_layout_version)
            return fail(str_cat(directory, " is an OCI image layout of version ", version, "; kiln writes ",
                                k_layout_version));
        return LayoutState::existing;
    }
    KILN_ASSIGN(bool empty, directory_is_empty(directory));
    if (!empty)
        return fail(str_cat(directory, " is not empty and is not an OCI image layout (it has no oci-layout file); ",
                            "refusing to write into it"));
    return LayoutState::fresh;
}

std::string blob_path(const std::string& directory, const Digest& digest) {
    return str_cat(directory, "/blobs/", digest.algorithm(), "/", digest.encoded());
}

// The name is the content's digest, so a blob already there with the right size is the same blob.
bool blob_present(const std::string& path, std::int64_t size) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size;
}

Status place_document(const std::string& directory, const Descriptor& descriptor, std::string_view bytes) {
    std::string target = blob_path(directory, descriptor.digest);
    if (blob_present(target, descriptor.size)) return {};
    return write_file_atomic(target, bytes);
}

// Links `source` to `target`; false when this filesystem or kernel will not, and the caller should copy.
Result<bool> try_hardlink(const std::string& source, const std::string& target, std::int64_t size) {
    struct stat st;
    if (::stat(source.c_str(), &st) != 0) return fail_errno(str_cat("stat layer file ", source));
    if (!S_ISREG(st.st_mode) || st.st_size != size)
        return fail(str_cat("layer file ", source, " has ", st.st_size, " bytes, its descriptor says ", size));
    // Linked beside the target and renamed over it, so that a damaged blob already there is replaced atomically.
    std::string temp = str_cat(target, ".link-", unique_name_suffix());
    if (::link(source.c_str(), temp.c_str()) != 0) {
        int err = errno;
        if (err == EXDEV || err == EPERM || err == EACCES || err == EMLINK || err == EOPNOTSUPP) return false;
        return fail_errno(str_cat("link ", source, " to ", temp), err);
    }
    int renamed = ::rename(temp.c_str(), target.c_str());
    int err = errno;
    // rename() of two links to one inode succeeds without removing the source name.
    ::unlink(temp.c_str());
    if (renamed != 0) return fail_errno(str_cat("rename to ", target), err);
    return true;
}

Status place_layer(const std::string& directory, const Layer& layer) {
    const Descriptor& descriptor = layer.descriptor();
    std::string target = blob_path(directory, descriptor.digest);
    if (blob_present(target, descriptor.size)) return {};
    KILN_TRY(make_directories(parent_path(target)));
    if (const auto* file_layer = dynamic_cast<const FileLayer*>(&layer)) {
        KILN_ASSIGN(bool linked, try_hardlink(file_layer->path(), target, descriptor.size));
        if (linked) return {};
        log_debug("copying layer ", descriptor.digest.short_str(), ": cannot hardlink it into ", directory);
    }
    KILN_ASSIGN(AtomicFile file, AtomicFile::create(target));
    KILN_TRY(copy_verified_blob(layer, file.writer()));
    return file.commit();
}

Result<Index> existing_index(const std::string& directory, LayoutState state) {
    std::string path = directory + "/index.json";
    // A layout whose earlier write stopped before index.json holds blobs only.
    if (state == LayoutState::fresh || !path_exists(path))
        return Index{.media_type = std::string(media_type::oci_index)};
    KILN_ASSIGN(std::string bytes, read_file(path));
    return with_context(Index::parse(bytes), path);
}

// Puts `entry` where an entry with the same ref name (or, unnamed, the same digest and no name) was, else last.
void replace_entry(Index& index, Descriptor entry, std::string_view ref_name) {
    auto same_slot = [&](const Descriptor& existing) {
        auto name = existing.annotations.find(std::string(k_ref_name_annotation));
        if (!ref_name.empty()) return name != existing.annotations.end() && name->second == ref_name;
        return name == existing.annotations.end() && existing.digest == entry.digest;
    };
    std::vector<Descriptor> kept;
    std::optional<size_t> slot;
    for (Descriptor& existing : index.manifests) {
        if (same_slot(existing)) {
            if (!slot) slot = kept.size();
            continue;
        }
        kept.push_back(std::move(existing));
    }
    kept.insert(kept.begin() + static_cast<std::ptrdiff_t>(slot.value_or(kept.size())), std::move(entry));
    index.manifests = std::move(kept);
}

Descriptor index_entry(const Image& image, const ImageDocuments& documents, std::string_view ref_name) {
    Descriptor entry = documents.manifest;
    entry.annotations.clear();
    if (!ref_name.empty()) entry.annotations[std::string(k_ref_name_annotation)] = std::string(ref_name);
    const ImageConfig& config = image.config();
    if (!config.os.empty() && !config.architecture.empty())
        entry.platform = Platform{.os = config.os, .architecture = config.architecture, .variant = config.variant};
    return entry;
}

}  // namespace

bool is_valid_ref_name(std::string_view ref_name) {
    if (ref_name.empty()) return false;
    for (const std::string& component : split(ref_name, '/'))
        if (!valid_ref_component(component)) return false;
    return true;
}

Result<Descriptor> write_oci_layout(const std::string& directory, const Image& image, const ImageDocuments& documents,
                                    std::string_view ref_name) {
    std::string what = str_cat("writing OCI layout ", directory);
    if (!ref_name.empty() && !is_valid_ref_name(ref_name))
        return fail(Error(str_cat("invalid reference name \"", ref_name, "\" for an OCI layout")).context(what));
    KILN_TRY_CONTEXT(check_image_documents(image, documents), what);
    KILN_ASSIGN(LayoutState state, with_context(inspect_directory(directory), what));
    // Written first, so that a write that stops half way leaves a layout the next attempt can extend.
    if (state == LayoutState::fresh)
        KILN_TRY_CONTEXT(write_file_atomic(directory + "/oci-layout",
                                           str_cat("{\"imageLayoutVersion\":\"", k_layout_version, "\"}")),
                         what);
    KILN_TRY_CONTEXT(make_directories(directory + "/blobs/sha256"), what);
    for (const LayerPtr& layer : image.layers())
        KILN_TRY_CONTEXT(place_layer(directory, *layer), what);
    KILN_TRY_CONTEXT(place_document(directory, documents.config, documents.config_bytes), what);
    KILN_TRY_CONTEXT(place_document(directory, documents.manifest, documents.manifest_bytes), what);

    KILN_ASSIGN(Index index, with_context(existing_index(directory, state), what));
    Descriptor entry = index_entry(image, documents, ref_name);
    replace_entry(index, entry, ref_name);
    KILN_TRY_CONTEXT(write_file_atomic(directory + "/index.json", index.serialize()), what);
    log_info("wrote ", documents.manifest.digest.short_str(), " to OCI layout ", directory,
             ref_name.empty() ? std::string() : str_cat(" as ", ref_name));
    return entry;
}

Result<Index> read_oci_layout_index(const std::string& directory) {
    std::string path = directory + "/index.json";
    KILN_ASSIGN(std::string bytes, read_file(path));
    return with_context(Index::parse(bytes), path);
}

}  // namespace kiln
