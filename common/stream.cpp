#include "common/stream.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/strings.hpp"

namespace kiln {

Result<size_t> FdReader::read(char* buffer, size_t size) {
    while (true) {
        ssize_t n = ::read(m_fd, buffer, size);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return fail_errno(str_cat("read ", m_name.empty() ? "fd" : m_name));
    }
}

Status FdWriter::write(const char* buffer, size_t size) {
    while (size > 0) {
        ssize_t n = ::write(m_fd, buffer, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(str_cat("write ", m_name.empty() ? "fd" : m_name));
        }
        buffer += n;
        size -= static_cast<size_t>(n);
    }
    return {};
}

Result<size_t> StringReader::read(char* buffer, size_t size) {
    size_t n = std::min(size, m_bytes.size() - m_offset);
    std::memcpy(buffer, m_bytes.data() + m_offset, n);
    m_offset += n;
    return n;
}

Status BoundedWriter::write(const char* buffer, size_t size) {
    if (size > m_limit - m_size) {
        m_overflowed = true;
        return fail(str_cat("more than the expected ", m_limit, " bytes"));
    }
    m_size += size;
    return m_inner.write(buffer, size);
}

Status HashingWriter::write(const char* buffer, size_t size) {
    m_hash.update(buffer, size);
    m_size += size;
    if (m_inner) return m_inner->write(buffer, size);
    return {};
}

Result<size_t> HashingReader::read(char* buffer, size_t size) {
    KILN_ASSIGN(size_t n, m_inner.read(buffer, size));
    m_hash.update(buffer, n);
    m_size += n;
    return n;
}

Result<std::uint64_t> copy_stream(Reader& from, Writer& to) {
    Buffer buffer(1 << 20);
    std::uint64_t total = 0;
    while (true) {
        KILN_ASSIGN(size_t n, from.read(buffer.data(), buffer.size()));
        if (n == 0) return total;
        KILN_TRY(to.write(buffer.data(), n));
        total += n;
    }
}

Result<std::string> read_all(Reader& from, size_t limit) {
    std::string bytes;
    char buffer[65536];
    while (true) {
        KILN_ASSIGN(size_t n, from.read(buffer, sizeof buffer));
        if (n == 0) return bytes;
        if (bytes.size() + n > limit) return fail(str_cat("document larger than the limit of ", limit, " bytes"));
        bytes.append(buffer, n);
    }
}

}  // namespace kiln
