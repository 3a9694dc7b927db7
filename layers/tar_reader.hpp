#pragma once
// Reads a tar stream (ustar, pax, GNU) with libarchive, pulling bytes from a kiln Reader. Only the tar
// formats are enabled and no filters: decompression and hashing belong to the caller's Reader chain.

#include <archive.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "layers/tar_entry.hpp"
#include "layers/tar_locale.hpp"

namespace kiln {

// A piece of an entry's content at `offset`; gaps between pieces are holes of a sparse file.
struct TarDataBlock {
    const char* data = nullptr;
    size_t size = 0;
    std::int64_t offset = 0;
};

class TarReader {
public:
    // `source` must outlive the reader. The reader keeps its own address in libarchive: it cannot move.
    explicit TarReader(Reader& source);
    ~TarReader();
    TarReader(const TarReader&) = delete;
    TarReader& operator=(const TarReader&) = delete;

    // Advances to the next entry; false at the end of the archive. An empty stream is an archive with no
    // entries.
    Result<bool> next(TarEntry& entry);
    // The next block of the current entry's content; nullopt once it is all read.
    Result<std::optional<TarDataBlock>> read_block();
    // Reads the source to its end after the archive's end marker, so that a hashing Reader sees every byte.
    Status drain();
    // Bytes taken from the source so far.
    std::uint64_t bytes_read() const { return m_bytes_read; }

private:
    struct ArchiveDeleter {
        void operator()(archive* handle) const { archive_read_free(handle); }
    };
    static la_ssize_t read_callback(archive* handle, void* self, const void** buffer);
    Status open();
    // The error to report after libarchive failed: the source's own error if it caused the failure.
    Error archive_error(const char* what);

    Reader& m_source;
    std::unique_ptr<archive, ArchiveDeleter> m_archive;
    Buffer m_buffer;
    std::optional<Error> m_source_error;
    std::uint64_t m_bytes_read = 0;
    bool m_source_at_end = false;
    bool m_archive_at_end = false;
};

}  // namespace kiln
