#pragma once
// Writes a tar stream in PAX restricted format (ustar headers, PAX records only where ustar cannot say it) to
// a kiln Writer. Only what the caller sets is recorded: no atime, ctime, user or group names, so the same
// entries always give the same bytes.

#include <archive.h>

#include <memory>
#include <optional>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "layers/tar_entry.hpp"
#include "layers/tar_locale.hpp"

namespace kiln {

class TarWriter {
public:
    // `out` must outlive the writer. The writer keeps its own address in libarchive: it cannot move.
    explicit TarWriter(Writer& out);
    ~TarWriter();
    TarWriter(const TarWriter&) = delete;
    TarWriter& operator=(const TarWriter&) = delete;

    // Writes an entry's header; a regular file's content follows through write_data(), exactly entry.size
    // bytes of it. Names are stored the same way whatever the process's locale. atime is not recorded.
    Status write_header(const TarEntry& entry);
    Status write_data(const char* data, size_t size);
    // Writes the end-of-archive marker. Nothing may be written afterwards.
    Status finish();

private:
    struct ArchiveDeleter {
        void operator()(archive* handle) const { archive_write_free(handle); }
    };
    static la_ssize_t write_callback(archive* handle, void* self, const void* buffer, size_t size);
    Status open();
    Error archive_error(const char* what);

    Writer& m_out;
    std::unique_ptr<archive, ArchiveDeleter> m_archive;
    std::optional<Error> m_out_error;
    bool m_finished = false;
};

}  // namespace kiln
