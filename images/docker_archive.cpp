#include "images/docker_archive.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "images/layer.hpp"

namespace kiln {
namespace {

struct ArchiveFree {
    void operator()(archive* handle) const { archive_write_free(handle); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

struct EntryFree {
    void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};

Error archive_error(archive* handle, std::string_view what) {
    const char* message = archive_error_string(handle);
    return Error(str_cat(what, ": ", message ? message : "libarchive failed"));
}

// Feeds an entry's data to libarchive, which accepts no more than the size declared in the header.
class ArchiveDataWriter final : public Writer {
public:
    ArchiveDataWriter(archive* handle, std::string name) : m_handle(handle), m_name(std::move(name)) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        while (size > 0) {
            la_ssize_t written = archive_write_data(m_handle, buffer, size);
            if (written < 0) return fail(archive_error(m_handle, str_cat("writing ", m_name)));
            if (written == 0) return fail(str_cat("writing ", m_name, ": more bytes than its declared size"));
            buffer += written;
            size -= static_cast<size_t>(written);
        }
        return {};
    }

private:
    archive* m_handle;
    std::string m_name;
};

// A regular file entry with fixed metadata, so that the same image always gives the same archive.
Status write_header(archive* handle, const std::string& name, std::int64_t size) {
    std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), size);
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (archive_write_header(handle, entry.get()) != ARCHIVE_OK)
        return fail(archive_error(handle, str_cat("writing the header of ", name)));
    return {};
}

Status write_bytes_entry(archive* handle, const std::string& name, std::string_view bytes) {
    KILN_TRY(write_header(handle, name, static_cast<std::int64_t>(bytes.size())));
    ArchiveDataWriter data(handle, name);
    return data.write(bytes);
}

Status write_layer_entry(archive* handle, const std::string& name, const Layer& layer) {
    KILN_TRY(write_header(handle, name, layer.descriptor().size));
    ArchiveDataWriter data(handle, name);
    return copy_verified_blob(layer, data);
}

std::string config_name(const ImageDocuments& documents) { return documents.config.digest.encoded() + ".json"; }

// manifest.json: what docker load and skopeo read first.
std::string manifest_json(const Image& image, const ImageDocuments& documents,
                          const std::vector<std::string>& repo_tags) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerPtr& layer : image.layers()) layers.push_back(docker_archive_layer_name(layer->descriptor()));
    // No tags is an empty list, not null: docker load and skopeo read both, other readers only the list.
    nlohmann::json entry = {{"Config", config_name(documents)}, {"RepoTags", repo_tags}, {"Layers", layers}};
    return canonical_json(nlohmann::json::array({entry}));
}

// `repositories`: {"repo": {"tag": "<top layer id>"}}, the pre-1.10 index that docker save still writes. The top
// layer's id here is the name of its file without the extension (its blob digest's hex).
std::string repositories_json(const Image& image, const std::vector<std::pair<std::string, std::string>>& tags) {
    std::string top_layer = image.layers().back()->descriptor().digest.encoded();
    nlohmann::json repositories = nlohmann::json::object();
    for (const auto& [repository, tag] : tags) repositories[repository][tag] = top_layer;
    return canonical_json(repositories);
}

}  // namespace

Result<std::pair<std::string, std::string>> split_repo_tag(std::string_view repo_tag) {
    if (repo_tag.find('@') != std::string_view::npos)
        return fail(str_cat("\"", repo_tag, "\" names a digest; a docker archive lists repository:tag references"));
    for (char c : repo_tag)
        if (c <= ' ' || c == 0x7f) return fail(str_cat("\"", repo_tag, "\" is not a repository:tag reference"));
    size_t slash = repo_tag.rfind('/');
    size_t colon = repo_tag.rfind(':');
    if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash) || colon == 0 ||
        colon + 1 == repo_tag.size())
        return fail(str_cat("\"", repo_tag, "\" has no tag; a docker archive lists repository:tag references"));
    return std::pair(std::string(repo_tag.substr(0, colon)), std::string(repo_tag.substr(colon + 1)));
}

std::string docker_archive_layer_name(const Descriptor& layer) {
    const char* extension = ".tar";
    switch (layer_compression(layer.media_type)) {
        case Compression::gzip: extension = ".tar.gz"; break;
        case Compression::zstd: extension = ".tar.zst"; break;
        case Compression::none: break;
    }
    return layer.digest.encoded() + extension;
}

Status write_docker_archive(const std::string& path, const Image& image, const ImageDocuments& documents,
                            const std::vector<std::string>& repo_tags) {
    std::string what = str_cat("writing docker archive ", path);
    std::vector<std::pair<std::string, std::string>> tags;
    for (const std::string& repo_tag : repo_tags) {
        KILN_ASSIGN(auto tag, with_context(split_repo_tag(repo_tag), what));
        tags.push_back(std::move(tag));
    }
    KILN_TRY_CONTEXT(check_image_documents(image, documents), what);

    KILN_ASSIGN(AtomicFile file, with_context(AtomicFile::create(path), what));
    ArchivePtr handle(archive_write_new());
    if (!handle) return fail(Error("libarchive: out of memory").context(what));
    // Plain ustar headers, with a PAX extension only where ustar cannot say it (a layer over 8 GiB).
    if (archive_write_set_format_pax_restricted(handle.get()) != ARCHIVE_OK ||
        archive_write_open_fd(handle.get(), file.fd()) != ARCHIVE_OK)
        return fail(archive_error(handle.get(), what));

    KILN_TRY_CONTEXT(write_bytes_entry(handle.get(), "manifest.json", manifest_json(image, documents, repo_tags)),
                     what);
    if (!tags.empty() && !image.layers().empty())
        KILN_TRY_CONTEXT(write_bytes_entry(handle.get(), "repositories", repositories_json(image, tags)), what);
    KILN_TRY_CONTEXT(write_bytes_entry(handle.get(), config_name(documents), documents.config_bytes), what);
    std::set<std::string> written;
    for (const LayerPtr& layer : image.layers()) {
        std::string name = docker_archive_layer_name(layer->descriptor());
        // An image may hold the same layer twice; the archive holds its file once.
        if (!written.insert(name).second) continue;
        KILN_TRY_CONTEXT(write_layer_entry(handle.get(), name, *layer), what);
    }
    if (archive_write_close(handle.get()) != ARCHIVE_OK) return fail(archive_error(handle.get(), what));
    KILN_TRY_CONTEXT(file.commit(), what);
    log_info("wrote docker archive ", path, " (", image.layers().size(), " layer(s))");
    return {};
}

}  // namespace kiln
