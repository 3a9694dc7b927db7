#include "layers/tar_writer.hpp"

#include <archive_entry.h>
#include <sys/stat.h>

#include <cerrno>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

struct EntryDeleter {
    void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};

// archive_entry_set_filetype takes S_IF* bits under libarchive's names.
static_assert(AE_IFREG == S_IFREG && AE_IFDIR == S_IFDIR && AE_IFLNK == S_IFLNK && AE_IFIFO == S_IFIFO &&
              AE_IFCHR == S_IFCHR && AE_IFBLK == S_IFBLK);

}  // namespace

TarWriter::TarWriter(Writer& out) : m_out(out) {}

TarWriter::~TarWriter() = default;

la_ssize_t TarWriter::write_callback(archive* handle, void* self_pointer, const void* buffer, size_t size) {
    auto* self = static_cast<TarWriter*>(self_pointer);
    if (self->m_out_error) return -1;
    if (auto written = self->m_out.write(static_cast<const char*>(buffer), size); !written) {
        archive_set_error(handle, EIO, "%s", written.error().message().c_str());
        self->m_out_error = std::move(written).error();
        return -1;
    }
    return static_cast<la_ssize_t>(size);
}

Error TarWriter::archive_error(const char* what) {
    if (m_out_error) return *m_out_error;
    const char* message = m_archive ? archive_error_string(m_archive.get()) : nullptr;
    return Error(str_cat(what, ": ", message ? message : "libarchive failed"));
}

Status TarWriter::open() {
    m_archive.reset(archive_write_new());
    if (!m_archive) return fail("cannot create a libarchive writer");
    archive* handle = m_archive.get();
    if (archive_write_set_format_pax_restricted(handle) != ARCHIVE_OK)
        return fail(archive_error("setting tar format"));
    // SCHILY.xattr.* only (not LIBARCHIVE.xattr.* as well): the form Go's archive/tar (Docker, containerd)
    // reads.
    if (archive_write_set_options(handle, "xattrheader=SCHILY") != ARCHIVE_OK)
        return fail(archive_error("setting tar options"));
    // No blocking: the archive ends after its two zero blocks instead of being padded to 10 KiB.
    if (archive_write_set_bytes_per_block(handle, 0) != ARCHIVE_OK)
        return fail(archive_error("setting block size"));
    if (archive_write_open2(handle, this, nullptr, write_callback, nullptr, nullptr) != ARCHIVE_OK)
        return fail(archive_error("opening tar stream"));
    return {};
}

Status TarWriter::write_header(const TarEntry& entry) {
    if (m_finished) return fail("tar: write after finish()");
    ThreadLocaleGuard locale;
    if (!m_archive) KILN_TRY(open());
    std::unique_ptr<archive_entry, EntryDeleter> raw(archive_entry_new());
    if (!raw) return fail("cannot allocate a tar entry");
    archive_entry* e = raw.get();
    archive_entry_copy_pathname(e, entry.name.c_str());
    archive_entry_set_filetype(e, file_type_bits(entry.type));
    archive_entry_set_perm(e, entry.mode & 07777);
    archive_entry_set_uid(e, entry.uid);
    archive_entry_set_gid(e, entry.gid);
    archive_entry_set_mtime(e, entry.mtime.tv_sec, entry.mtime.tv_nsec);
    archive_entry_set_size(e, entry.type == TarEntryType::regular ? entry.size : 0);
    if (entry.type == TarEntryType::symlink) archive_entry_copy_symlink(e, entry.link_target.c_str());
    if (entry.type == TarEntryType::hardlink) archive_entry_copy_hardlink(e, entry.link_target.c_str());
    if (entry.type == TarEntryType::char_device || entry.type == TarEntryType::block_device) {
        archive_entry_set_rdevmajor(e, entry.rdev_major);
        archive_entry_set_rdevminor(e, entry.rdev_minor);
    }
    for (const auto& [name, value] : entry.xattrs)
        archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    // A name that is not UTF-8 draws a warning, and is stored as raw bytes marked hdrcharset=BINARY.
    int ret = archive_write_header(m_archive.get(), e);
    if (ret == ARCHIVE_WARN) {
        log_debug("tar: ", entry.name, ": ", archive_error_string(m_archive.get()));
    } else if (ret != ARCHIVE_OK) {
        return std::unexpected(
            archive_error("writing tar header").context(str_cat("entry \"", entry.name, "\"")));
    }
    return {};
}

Status TarWriter::write_data(const char* data, size_t size) {
    if (!m_archive || m_finished) return fail("tar: data written outside an entry");
    while (size > 0) {
        la_ssize_t n = archive_write_data(m_archive.get(), data, size);
        if (n < 0) return std::unexpected(archive_error("writing tar data"));
        // libarchive accepts at most what the header announced: more is the caller's mistake.
        if (n == 0) return fail("tar: more data than the entry's size");
        data += n;
        size -= static_cast<size_t>(n);
    }
    return {};
}

Status TarWriter::finish() {
    if (m_finished) return fail("tar: finish() called twice");
    if (!m_archive) KILN_TRY(open());
    m_finished = true;
    if (archive_write_close(m_archive.get()) != ARCHIVE_OK)
        return std::unexpected(archive_error("closing tar stream"));
    return {};
}

}  // namespace kiln
