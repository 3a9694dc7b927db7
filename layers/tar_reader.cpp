#include "layers/tar_reader.hpp"

#include <archive_entry.h>

#include <cerrno>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr size_t k_read_buffer_size = 128 << 10;

TarEntryType entry_type(archive_entry* entry) {
    if (archive_entry_hardlink(entry) != nullptr) return TarEntryType::hardlink;
    switch (archive_entry_filetype(entry)) {
        case AE_IFREG:
            return TarEntryType::regular;
        case AE_IFDIR:
            return TarEntryType::directory;
        case AE_IFLNK:
            return TarEntryType::symlink;
        case AE_IFIFO:
            return TarEntryType::fifo;
        case AE_IFCHR:
            return TarEntryType::char_device;
        case AE_IFBLK:
            return TarEntryType::block_device;
        default:
            return TarEntryType::other;
    }
}

// Names come back as bytes in the thread's locale (C.UTF-8 here); a name libarchive cannot convert is still
// available in its stored form.
const char* entry_name(archive_entry* entry) {
    if (const char* name = archive_entry_pathname(entry)) return name;
    return archive_entry_pathname_utf8(entry);
}

const char* link_name(archive_entry* entry, TarEntryType type) {
    if (type == TarEntryType::hardlink) {
        if (const char* target = archive_entry_hardlink(entry)) return target;
        return archive_entry_hardlink_utf8(entry);
    }
    if (const char* target = archive_entry_symlink(entry)) return target;
    return archive_entry_symlink_utf8(entry);
}

}  // namespace

TarReader::TarReader(Reader& source) : m_source(source), m_buffer(k_read_buffer_size) {}

TarReader::~TarReader() = default;

la_ssize_t TarReader::read_callback(archive* handle, void* self_pointer, const void** buffer) {
    auto* self = static_cast<TarReader*>(self_pointer);
    *buffer = self->m_buffer.data();
    if (self->m_source_error) return -1;
    auto n = self->m_source.read(self->m_buffer.data(), self->m_buffer.size());
    if (!n) {
        archive_set_error(handle, EIO, "%s", n.error().message().c_str());
        self->m_source_error = std::move(n.error());
        return -1;
    }
    if (*n == 0) self->m_source_at_end = true;
    self->m_bytes_read += *n;
    return static_cast<la_ssize_t>(*n);
}

Status TarReader::open() {
    m_archive.reset(archive_read_new());
    if (!m_archive) return fail("cannot create a libarchive reader");
    // The tar reader understands ustar, pax and GNU tar (long names, sparse files); nothing else is enabled.
    if (archive_read_support_format_tar(m_archive.get()) != ARCHIVE_OK)
        return fail(archive_error("enabling tar"));
    if (archive_read_open2(m_archive.get(), this, nullptr, read_callback, nullptr, nullptr) != ARCHIVE_OK)
        return fail(archive_error("opening tar stream"));
    return {};
}

Error TarReader::archive_error(const char* what) {
    if (m_source_error) return *m_source_error;
    const char* message = m_archive ? archive_error_string(m_archive.get()) : nullptr;
    return Error(str_cat(what, ": ", message ? message : "libarchive failed"));
}

Result<bool> TarReader::next(TarEntry& entry) {
    if (m_archive_at_end) return false;
    ThreadLocaleGuard locale;
    if (!m_archive) {
        if (auto opened = open(); !opened) {
            // Zero bytes are an archive without entries (as Go's archive/tar, and so Docker, read them).
            if (m_source_at_end && m_bytes_read == 0 && !m_source_error) {
                m_archive_at_end = true;
                return false;
            }
            return std::unexpected(std::move(opened).error());
        }
    }
    archive_entry* raw = nullptr;
    int ret = archive_read_next_header(m_archive.get(), &raw);
    if (ret == ARCHIVE_EOF) {
        m_archive_at_end = true;
        return false;
    }
    if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN) {
        if (m_source_at_end && m_bytes_read == 0 && !m_source_error) {
            m_archive_at_end = true;
            return false;
        }
        return std::unexpected(archive_error("reading tar header"));
    }
    if (ret == ARCHIVE_WARN) log_debug("tar: ", archive_error_string(m_archive.get()));

    entry = TarEntry{};
    const char* name = entry_name(raw);
    if (!name) return fail("tar entry with a name that cannot be read");
    entry.name = name;
    entry.type = entry_type(raw);
    if (entry.type == TarEntryType::hardlink || entry.type == TarEntryType::symlink) {
        const char* target = link_name(raw, entry.type);
        if (!target) return fail(str_cat("tar entry \"", entry.name, "\": link target cannot be read"));
        entry.link_target = target;
    }
    entry.mode = static_cast<std::uint32_t>(archive_entry_perm(raw)) & 07777;
    entry.uid = archive_entry_uid(raw);
    entry.gid = archive_entry_gid(raw);
    entry.size = archive_entry_size_is_set(raw) ? archive_entry_size(raw) : 0;
    entry.mtime = {archive_entry_mtime(raw), archive_entry_mtime_nsec(raw)};
    if (archive_entry_atime_is_set(raw))
        entry.atime = timespec{archive_entry_atime(raw), archive_entry_atime_nsec(raw)};
    entry.rdev_major = static_cast<std::uint32_t>(archive_entry_rdevmajor(raw));
    entry.rdev_minor = static_cast<std::uint32_t>(archive_entry_rdevminor(raw));
    archive_entry_xattr_reset(raw);
    const char* xattr_name = nullptr;
    const void* value = nullptr;
    size_t value_size = 0;
    while (archive_entry_xattr_next(raw, &xattr_name, &value, &value_size) == ARCHIVE_OK) {
        if (!xattr_name) continue;
        entry.xattrs.emplace_back(xattr_name, std::string(static_cast<const char*>(value), value_size));
    }
    return true;
}

Result<std::optional<TarDataBlock>> TarReader::read_block() {
    if (!m_archive || m_archive_at_end) return std::optional<TarDataBlock>();
    const void* data = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int ret = archive_read_data_block(m_archive.get(), &data, &size, &offset);
    if (ret == ARCHIVE_EOF) return std::optional<TarDataBlock>();
    if (ret != ARCHIVE_OK && ret != ARCHIVE_WARN)
        return std::unexpected(archive_error("reading tar entry data"));
    return std::optional<TarDataBlock>(TarDataBlock{static_cast<const char*>(data), size, offset});
}

Status TarReader::drain() {
    if (m_source_error) return std::unexpected(*m_source_error);
    while (!m_source_at_end) {
        KILN_ASSIGN(size_t n, m_source.read(m_buffer.data(), m_buffer.size()));
        if (n == 0) m_source_at_end = true;
        m_bytes_read += n;
    }
    return {};
}

}  // namespace kiln
