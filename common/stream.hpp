#pragma once
// Byte streams. Layers, blobs and HTTP bodies are never held whole in memory: they flow through these.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/sha256.hpp"

namespace kiln {

// Bytes to stream through, left uninitialised. A std::vector zero-fills, which touches every page of it before
// any byte is streamed: 3 ms per MiB in a VM that faults pages in slowly, more than a small layer costs to write.
// Here only the pages that are written to are touched.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(size_t size) : m_bytes(std::make_unique_for_overwrite<char[]>(size)), m_size(size) {}
    Buffer(Buffer&& other) noexcept : m_bytes(std::move(other.m_bytes)), m_size(std::exchange(other.m_size, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
        m_bytes = std::move(other.m_bytes);
        m_size = std::exchange(other.m_size, 0);
        return *this;
    }
    char* data() { return m_bytes.get(); }
    const char* data() const { return m_bytes.get(); }
    size_t size() const { return m_size; }
    bool empty() const { return m_size == 0; }

private:
    std::unique_ptr<char[]> m_bytes;
    size_t m_size = 0;
};

class Reader {
public:
    virtual ~Reader() = default;
    // Reads up to `size` bytes; 0 means end of stream.
    virtual Result<size_t> read(char* buffer, size_t size) = 0;
};

class Writer {
public:
    virtual ~Writer() = default;
    // Writes all `size` bytes or fails.
    virtual Status write(const char* buffer, size_t size) = 0;
    Status write(std::string_view bytes) { return write(bytes.data(), bytes.size()); }
};

// A writer that can start over: a download that failed half-way, or whose bytes failed verification, is
// written again from the start.
class RewindableWriter : public Writer {
public:
    // Discards everything written so far.
    virtual Status rewind() = 0;
};

// Reads from another reader it does not own: lends a stream where an owned Reader is expected.
class BorrowedReader final : public Reader {
public:
    explicit BorrowedReader(Reader& inner) : m_inner(inner) {}
    Result<size_t> read(char* buffer, size_t size) override { return m_inner.read(buffer, size); }

private:
    Reader& m_inner;
};

// Reads from a file descriptor it does not own.
class FdReader final : public Reader {
public:
    explicit FdReader(int fd, std::string name = "") : m_fd(fd), m_name(std::move(name)) {}
    Result<size_t> read(char* buffer, size_t size) override;

private:
    int m_fd;
    std::string m_name;
};

// Writes to a file descriptor it does not own.
class FdWriter final : public Writer {
public:
    explicit FdWriter(int fd, std::string name = "") : m_fd(fd), m_name(std::move(name)) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override;

private:
    int m_fd;
    std::string m_name;
};

// Reads an in-memory buffer.
class StringReader final : public Reader {
public:
    explicit StringReader(std::string bytes) : m_bytes(std::move(bytes)) {}
    Result<size_t> read(char* buffer, size_t size) override;

private:
    std::string m_bytes;
    size_t m_offset = 0;
};

// Appends to an in-memory string (for small documents only).
class StringWriter final : public RewindableWriter {
public:
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        m_bytes.append(buffer, size);
        return {};
    }
    Status rewind() override {
        m_bytes.clear();
        return {};
    }
    const std::string& bytes() const { return m_bytes; }
    std::string take() { return std::move(m_bytes); }

private:
    std::string m_bytes;
};

// Passes bytes to `inner` (which may be null, to only measure) while hashing and counting them.
class HashingWriter final : public Writer {
public:
    explicit HashingWriter(Writer* inner) : m_inner(inner) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override;
    std::uint64_t size() const { return m_size; }
    // "sha256:<hex>" of everything written; call once, at the end.
    std::string finish_digest() { return "sha256:" + m_hash.finish_hex(); }

private:
    Writer* m_inner;
    Sha256 m_hash;
    std::uint64_t m_size = 0;
};

// Passes bytes to `inner` up to `limit` in all, and refuses any beyond: a sink that a hostile server cannot
// fill without end (a blob past its descriptor's size, a download past --max-download-size).
class BoundedWriter final : public Writer {
public:
    BoundedWriter(Writer& inner, std::uint64_t limit) : m_inner(inner), m_limit(limit) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override;
    bool overflowed() const { return m_overflowed; }

private:
    Writer& m_inner;
    std::uint64_t m_limit;
    std::uint64_t m_size = 0;
    bool m_overflowed = false;
};

// Hashes and counts what passes through a Reader.
class HashingReader final : public Reader {
public:
    explicit HashingReader(Reader& inner) : m_inner(inner) {}
    Result<size_t> read(char* buffer, size_t size) override;
    std::uint64_t size() const { return m_size; }
    std::string finish_digest() { return "sha256:" + m_hash.finish_hex(); }

private:
    Reader& m_inner;
    Sha256 m_hash;
    std::uint64_t m_size = 0;
};

// Copies `from` to `to` until end of stream; returns the number of bytes copied.
Result<std::uint64_t> copy_stream(Reader& from, Writer& to);

// Reads a whole stream, refusing more than `limit` bytes (documents, not layers).
Result<std::string> read_all(Reader& from, size_t limit);

}  // namespace kiln
