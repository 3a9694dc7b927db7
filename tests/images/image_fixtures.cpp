#include "image_fixtures.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>
#include <zlib.h>

#include <memory>
#include <set>
#include <stdexcept>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "images/media_type.hpp"

namespace kiln::testing {
namespace {

// Collects libarchive's output in memory: test layers are a few kilobytes.
la_ssize_t append_to_string(archive*, void* client, const void* buffer, size_t size) {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), size);
    return static_cast<la_ssize_t>(size);
}

void add_entry(archive* handle, const std::string& path, mode_t type, mode_t mode, std::string_view content) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), mode);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(entry.get(), 1700000000, 0);
    if (archive_write_header(handle, entry.get()) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(handle));
    if (!content.empty() && archive_write_data(handle, content.data(), content.size()) < 0)
        throw std::runtime_error(archive_error_string(handle));
}

class BytesLayer final : public Layer {
public:
    BytesLayer(Descriptor descriptor, Digest diff_id, std::string bytes)
        : m_descriptor(std::move(descriptor)), m_diff_id(std::move(diff_id)), m_bytes(std::move(bytes)) {}
    const Descriptor& descriptor() const override { return m_descriptor; }
    const Digest& diff_id() const override { return m_diff_id; }
    Result<std::unique_ptr<Reader>> open_blob() const override {
        return std::unique_ptr<Reader>(std::make_unique<StringReader>(m_bytes));
    }

private:
    Descriptor m_descriptor;
    Digest m_diff_id;
    std::string m_bytes;
};

}  // namespace

LayerPtr make_bytes_layer(Descriptor descriptor, Digest diff_id, std::string bytes) {
    return std::make_shared<BytesLayer>(std::move(descriptor), std::move(diff_id), std::move(bytes));
}

std::map<std::string, std::string> read_tar_files(const std::string& path) {
    std::map<std::string, std::string> files;
    std::unique_ptr<archive, int (*)(archive*)> handle(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(handle.get());
    if (archive_read_open_filename(handle.get(), path.c_str(), 65536) != ARCHIVE_OK) return files;
    archive_entry* entry = nullptr;
    while (archive_read_next_header(handle.get(), &entry) == ARCHIVE_OK) {
        if (archive_entry_filetype(entry) != AE_IFREG) continue;
        std::string content;
        char buffer[65536];
        la_ssize_t n;
        while ((n = archive_read_data(handle.get(), buffer, sizeof buffer)) > 0) content.append(buffer, n);
        files[archive_entry_pathname(entry)] = std::move(content);
    }
    return files;
}

std::string make_tar(const std::vector<TestFile>& files) {
    std::string bytes;
    std::unique_ptr<archive, int (*)(archive*)> handle(archive_write_new(), archive_write_free);
    archive_write_set_format_pax_restricted(handle.get());
    archive_write_set_bytes_in_last_block(handle.get(), 1);
    archive_write_open(handle.get(), &bytes, nullptr, append_to_string, nullptr);
    std::set<std::string> directories;
    for (const TestFile& file : files) {
        std::vector<std::string> parts = split(file.path, '/');
        std::string prefix;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            prefix += parts[i] + "/";
            if (directories.insert(prefix).second) add_entry(handle.get(), prefix, AE_IFDIR, 0755, "");
        }
        add_entry(handle.get(), file.path, AE_IFREG, file.mode, file.content);
    }
    archive_write_close(handle.get());
    return bytes;
}

std::string gzip_bytes(std::string_view bytes) {
    z_stream stream{};
    // 15 window bits + 16 selects the gzip wrapper.
    if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out(deflateBound(&stream, bytes.size()) + 64, '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    stream.avail_in = static_cast<uInt>(bytes.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    int status = deflate(&stream, Z_FINISH);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    if (status != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
    return out;
}

LayerPtr store_gzip_layer(const BlobStore& store, const std::vector<TestFile>& files) {
    std::string tar = make_tar(files);
    std::string blob = gzip_bytes(tar);
    auto digest = store.put(blob);
    if (!digest) throw std::runtime_error(digest.error().message());
    Descriptor descriptor{.media_type = std::string(media_type::oci_layer_gzip),
                          .digest = *digest,
                          .size = static_cast<std::int64_t>(blob.size())};
    return std::make_shared<FileLayer>(descriptor, Digest::of_bytes(tar), store.path(*digest));
}

std::vector<TestFile> first_layer_files() {
    return {{"hello.txt", "hello from layer one\n"}, {"etc/motd", "welcome\n"}};
}

std::vector<TestFile> second_layer_files() {
    return {{"app/run.sh", "#!/bin/sh\necho run\n", 0755}, {"app/data/values.txt", "1 2 3\n"}};
}

Image make_test_image(const BlobStore& store) {
    Image image = Image::empty(Platform{.os = "linux", .architecture = "amd64"});
    image = image.with_layer(store_gzip_layer(store, first_layer_files()),
                             History{.created = "2024-01-01T00:00:00Z", .created_by = "COPY hello.txt /"});
    RunConfig run_config = image.config().config;
    run_config.set_env("PATH", "/usr/bin:/bin");
    run_config.cmd = std::vector<std::string>{"/app/run.sh"};
    run_config.labels["org.example.test"] = "yes";
    image = image.with_run_config(run_config);
    image = image.with_empty_layer_history(History{.created = "2024-01-01T00:00:01Z", .created_by = "CMD"});
    image = image.with_layer(store_gzip_layer(store, second_layer_files()),
                             History{.created = "2024-01-01T00:00:02Z", .created_by = "COPY app /app"});
    ImageConfig config = image.config();
    config.created = "2024-01-01T00:00:02Z";
    return image.with_config(config);
}

std::string find_tool(const std::string& tool) {
    const char* path = ::getenv("PATH");
    for (const std::string& dir : split(path ? path : "/usr/bin:/bin", ':')) {
        std::string candidate = dir + "/" + tool;
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

ProcessResult run(const std::vector<std::string>& argv) {
    auto result = run_process(argv);
    if (!result) return ProcessResult{.exit_code = 127, .stderr_bytes = result.error().message()};
    return *result;
}

std::string corpora_dir() {
    std::string dir = KILN_SOURCE_DIR "/../shared/corpora";
    return path_exists(dir) ? dir : "";
}

}  // namespace kiln::testing
