#include "builder/sources/archive_source.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "builder/sources/context.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/compression.hpp"
#include "layers/tar_reader.hpp"

namespace kiln {
namespace {

constexpr size_t k_filter_buffer_size = 128 << 10;

// bzip2 and xz through libarchive's filters (layers only ever need gzip and zstd): libarchive's "raw" format
// hands back the decompressed stream as the data of a single entry.
class FilterReader final : public Reader {
public:
    FilterReader(Reader& inner, ArchiveCompression compression)
        : m_inner(inner), m_compression(compression), m_buffer(k_filter_buffer_size) {}
    FilterReader(const FilterReader&) = delete;
    FilterReader& operator=(const FilterReader&) = delete;

    Status open() {
        m_archive.reset(archive_read_new());
        if (!m_archive) return fail("cannot create a libarchive reader");
        const char* name = m_compression == ArchiveCompression::bzip2 ? "bzip2" : "xz";
        int supported = m_compression == ArchiveCompression::bzip2
                            ? archive_read_support_filter_bzip2(m_archive.get())
                            : archive_read_support_filter_xz(m_archive.get());
        // ARCHIVE_WARN would mean an external decompressor program: kiln never runs one on hostile input.
        if (supported != ARCHIVE_OK)
            return fail(str_cat("this libarchive cannot decompress ", name, " itself"));
        if (archive_read_support_format_raw(m_archive.get()) != ARCHIVE_OK) return fail(error(name));
        if (archive_read_open2(m_archive.get(), this, nullptr, read_callback, nullptr, nullptr) != ARCHIVE_OK)
            return fail(error(name));
        archive_entry* entry = nullptr;
        int ret = archive_read_next_header(m_archive.get(), &entry);
        if (ret == ARCHIVE_EOF) {
            m_at_end = true;
            return {};
        }
        if (ret != ARCHIVE_OK) return fail(error(name));
        return {};
    }

    Result<size_t> read(char* buffer, size_t size) override {
        if (m_at_end || size == 0) return size_t{0};
        la_ssize_t n = archive_read_data(m_archive.get(), buffer, size);
        if (n < 0) return fail(error(m_compression == ArchiveCompression::bzip2 ? "bzip2" : "xz"));
        if (n == 0) m_at_end = true;
        return static_cast<size_t>(n);
    }

private:
    struct ArchiveDeleter {
        void operator()(archive* handle) const { archive_read_free(handle); }
    };

    static la_ssize_t read_callback(archive* handle, void* self_pointer, const void** buffer) {
        auto* self = static_cast<FilterReader*>(self_pointer);
        *buffer = self->m_buffer.data();
        auto n = self->m_inner.read(self->m_buffer.data(), self->m_buffer.size());
        if (!n) {
            self->m_inner_error = n.error();
            archive_set_error(handle, EIO, "%s", n.error().message().c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(*n);
    }

    Error error(const char* what) const {
        if (m_inner_error) return *m_inner_error;
        const char* message = m_archive ? archive_error_string(m_archive.get()) : nullptr;
        return Error(str_cat(what, ": ", message ? message : "corrupt compressed data"));
    }

    Reader& m_inner;
    ArchiveCompression m_compression;
    Buffer m_buffer;
    std::unique_ptr<archive, ArchiveDeleter> m_archive;
    std::optional<Error> m_inner_error;
    bool m_at_end = false;
};

// Sniffs the compression, then reads through the matching decompressor; owns the sniffing buffer.
class DecompressedReader final : public Reader {
public:
    explicit DecompressedReader(Reader& raw) : m_peeking(raw) {}

    Status open() {
        KILN_ASSIGN(std::string_view head, m_peeking.peek(6));
        switch (detect_archive_compression(head)) {
            case ArchiveCompression::none:
                return {};
            case ArchiveCompression::gzip: {
                KILN_ASSIGN(m_stream, make_decompressor(m_peeking, Compression::gzip));
                return {};
            }
            case ArchiveCompression::zstd: {
                KILN_ASSIGN(m_stream, make_decompressor(m_peeking, Compression::zstd));
                return {};
            }
            case ArchiveCompression::bzip2:
            case ArchiveCompression::xz: {
                auto filter = std::make_unique<FilterReader>(m_peeking, detect_archive_compression(head));
                KILN_TRY(filter->open());
                m_stream = std::move(filter);
                return {};
            }
        }
        return {};
    }

    Result<size_t> read(char* buffer, size_t size) override {
        return m_stream ? m_stream->read(buffer, size) : m_peeking.read(buffer, size);
    }

private:
    PeekingReader m_peeking;
    std::unique_ptr<Reader> m_stream;
};

// Opens `path` for reading when it is a regular file (a FIFO would block, a device is not an archive).
Result<std::optional<UniqueFd>> open_regular(const RootFs& root, const std::string& path) {
    KILN_ASSIGN(UniqueFd probe, root.open(path, O_PATH));
    struct stat st;
    if (::fstat(probe.get(), &st) != 0) return fail_errno(str_cat("stat ", root.display(path)));
    if (!S_ISREG(st.st_mode)) return std::optional<UniqueFd>();
    // Reopening the O_PATH descriptor reads exactly the file that was checked.
    std::string proc = str_cat("/proc/self/fd/", probe.get());
    UniqueFd fd(::open(proc.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open ", root.display(path)));
    return std::optional<UniqueFd>(std::move(fd));
}

}  // namespace

ArchiveCompression detect_archive_compression(std::string_view first_bytes) {
    if (first_bytes.starts_with("\x1f\x8b\x08")) return ArchiveCompression::gzip;
    if (first_bytes.starts_with("BZh")) return ArchiveCompression::bzip2;
    if (first_bytes.starts_with(std::string_view("\xfd"
                                                 "7zXZ\x00",
                                                 6)))
        return ArchiveCompression::xz;
    if (first_bytes.starts_with("\x28\xb5\x2f\xfd")) return ArchiveCompression::zstd;
    return ArchiveCompression::none;
}

Result<std::unique_ptr<Reader>> open_decompressed(Reader& inner) {
    auto reader = std::make_unique<DecompressedReader>(inner);
    KILN_TRY(reader->open());
    return std::unique_ptr<Reader>(std::move(reader));
}

Result<bool> is_tar_archive(const RootFs& root, std::string_view path) {
    std::string source = clean_path(path);
    KILN_ASSIGN(std::optional<UniqueFd> fd, open_regular(root, source));
    if (!fd) return false;
    FdReader raw(fd->get(), root.display(source));
    auto decompressed = open_decompressed(raw);
    if (!decompressed) return false;
    TarReader tar(**decompressed);
    TarEntry entry;
    auto first = tar.next(entry);
    return first.has_value() && *first;
}

Status unpack_archive(const RootFs& from, std::string_view path, const RootFs& to,
                      std::string_view target_dir, const ArchiveUnpack& options,
                      std::vector<std::string>& written) {
    std::string source = clean_path(path);
    KILN_ASSIGN(std::optional<UniqueFd> fd, open_regular(from, source));
    if (!fd) return fail(str_cat(source, " is not a regular file"));
    CopyOwner made_by = options.owner.value_or(CopyOwner{});
    KILN_ASSIGN(UniqueFd dir, to.make_directories(target_dir, 0755, made_by.uid, made_by.gid));
    KILN_ASSIGN(std::string dir_rel, path_in_root(to, dir.get()));
    // The destination becomes the archive's root, as Docker chroots into it to untar.
    KILN_ASSIGN(RootFs into, RootFs::open(dir_rel.empty() ? to.path() : to.path() + "/" + dir_rel));
    struct stat expected, opened;
    if (::fstat(dir.get(), &expected) != 0 || ::fstat(into.fd(), &opened) != 0 ||
        expected.st_dev != opened.st_dev || expected.st_ino != opened.st_ino)
        return fail(str_cat("the destination ", to.display(dir_rel), " changed while it was being opened"));

    FdReader raw(fd->get(), from.display(source));
    KILN_ASSIGN(std::unique_ptr<Reader> decompressed,
                with_context(open_decompressed(raw), str_cat("archive ", source)));
    std::vector<std::string> extracted;
    ExtractOptions extract{.layer_name = source,
                           .ownership_failure = options.ownership_failure,
                           .mode = ExtractMode::archive,
                           .written = &extracted};
    if (options.owner) extract.owner = ExtractOwner{options.owner->uid, options.owner->gid};
    KILN_ASSIGN(ExtractStats stats, apply_layer(into, *decompressed, extract));
    log_debug("unpacked ", source, " into /", dir_rel, ": ", stats.entries, " entries, ",
              format_bytes(stats.bytes));
    if (!dir_rel.empty()) written.push_back(dir_rel);
    for (const std::string& entry : extracted)
        written.push_back(dir_rel.empty() ? entry : dir_rel + "/" + entry);
    return {};
}

}  // namespace kiln
