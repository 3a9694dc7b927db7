#pragma once
// Layer compression as streams: recognise gzip/zstd by their magic bytes, decompress while reading, compress
// while writing. Buffers are fixed-size, so a layer of any size flows through in constant memory.

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "images/media_type.hpp"

namespace kiln {

// The compression whose magic number starts `first_bytes` (gzip 1f 8b 08, zstd 28 b5 2f fd); none otherwise.
Compression detect_compression(std::string_view first_bytes);

// Wraps a Reader so that its first bytes can be inspected before anyone consumes them; read() replays them.
class PeekingReader final : public Reader {
public:
    explicit PeekingReader(Reader& inner) : m_inner(inner) {}
    // Reads ahead (without consuming) until `size` bytes are buffered or the stream ends; returns what is
    // buffered, at most `size` bytes (fewer only at end of stream). `size` is at most k_max_peek.
    Result<std::string_view> peek(size_t size);
    // The compression of the stream, from its magic bytes.
    Result<Compression> detect();
    Result<size_t> read(char* buffer, size_t size) override;

    static constexpr size_t k_max_peek = 16;

private:
    Reader& m_inner;
    char m_peeked[k_max_peek];
    size_t m_begin = 0;
    size_t m_end = 0;
};

// A Reader yielding the decompressed bytes of `inner`, which must outlive it. gzip accepts concatenated
// members (as pigz and `cat a.gz b.gz` produce); anything after the last member or frame that is not another
// member or frame, and a stream cut short, are errors.
Result<std::unique_ptr<Reader>> make_decompressor(Reader& inner, Compression compression);

// Sniffs the compression of `inner` and decompresses accordingly; the result owns the sniffing buffer.
Result<std::unique_ptr<Reader>> make_auto_decompressor(Reader& inner);

struct CompressionOptions {
    Compression compression = Compression::gzip;
    // gzip 1–9, mapped onto ISA-L's levels 1–3 (its level 0 is much larger output for little gain):
    // 1–3 → 1, the fastest, about gzip -1's ratio; 4–6 → 2; 7–9 → 3, the densest. Unset: 1, as
    // go-containerregistry's default is gzip's fastest level. zstd 1–19, unset: 3. Ignored for none.
    std::optional<int> level;
    // zstd worker threads; 0 picks one per core, at most 4. zstd always runs in its multithreaded mode, whose
    // output is the same for any worker count, so digests do not depend on the machine's cores.
    int zstd_workers = 0;
    // gzip: the same bytes on every CPU and architecture, through zlib instead of ISA-L (whose output depends
    // on the CPU's instruction set), at about a seventh of the speed. --reproducible asks for it. zstd's output
    // does not depend on the CPU.
    bool portable = false;
};

// A Writer that compresses into another Writer. finish() must be called once all bytes are written: it ends
// the stream (gzip trailer, zstd epilogue) and flushes; a compressor destroyed unfinished leaves a truncated
// stream behind. The output depends only on the bytes written and the options, never on how the writes were
// split: input is handed to the codec in fixed-size chunks.
class Compressor : public Writer {
public:
    using Writer::write;
    virtual Status finish() = 0;
};

// gzip output has a fixed header (mtime 0, no file name, OS "unknown") so the same input always gives the
// same bytes; `inner` must outlive the compressor. gzip and zstd compress on other threads (gzip on one
// worker, zstd on its own workers), so `inner` is written from another thread until finish() returns; it must
// not be touched meanwhile.
Result<std::unique_ptr<Compressor>> make_compressor(Writer& inner, const CompressionOptions& options);

// A Reader that reads `inner` ahead on a worker thread, in fixed-size chunks with at most a few buffered, so
// that the work behind `inner` (download, hashing, decompression) overlaps with the caller's (extraction).
// `inner` is read only from that thread, and must outlive the returned reader and not be touched meanwhile.
std::unique_ptr<Reader> make_read_ahead_reader(Reader& inner);

}  // namespace kiln
