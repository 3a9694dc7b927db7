#include "images/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

BlobIngest::BlobIngest(std::string store_root, AtomicFile file, IngestDigest digest)
    : m_store_root(std::move(store_root)), m_file(std::move(file)), m_digest(digest) {}

Status BlobIngest::write(const char* buffer, size_t size) {
    if (m_digest == IngestDigest::hashed) m_hash.update(buffer, size);
    m_size += size;
    return m_file.writer().write(buffer, size);
}

Status BlobIngest::rewind() {
    if (ftruncate(m_file.fd(), 0) != 0) return fail_errno("truncating a blob being downloaded");
    if (lseek(m_file.fd(), 0, SEEK_SET) != 0) return fail_errno("rewinding a blob being downloaded");
    m_hash = Sha256();
    m_size = 0;
    return {};
}

Result<Digest> BlobIngest::commit(const std::optional<Digest>& expected) {
    if (m_digest == IngestDigest::from_writer && !expected)
        return fail("internal error: a blob whose writer hashes it was committed without its digest");
    Digest actual = m_digest == IngestDigest::from_writer ? *expected : Digest::from_sha256_hex(m_hash.finish_hex());
    if (expected && *expected != actual) {
        // Moved out so that its destructor removes the unverified bytes now, not when the caller lets go.
        AtomicFile discarded(std::move(m_file));
        return fail(str_cat("blob ", expected->str(), " failed verification: its content has digest ", actual.str()));
    }
    BlobStore store(m_store_root);
    // Already stored: our copy is discarded with the AtomicFile.
    if (store.contains(actual)) return actual;
    KILN_TRY(m_file.commit_as(store.path(actual)));
    return actual;
}

Result<BlobStore> BlobStore::open(const std::string& root) {
    KILN_TRY(make_directories(root + "/blobs/sha256"));
    KILN_TRY(make_directories(root + "/ingest"));
    // Another process may be writing into the same store (pods sharing a volume): only what no live writer
    // holds is removed.
    KILN_ASSIGN(size_t removed, remove_stale_temp_files(root + "/ingest", "blob"));
    if (removed > 0) log_debug("blob store ", root, ": removed ", removed, " partial blob(s) of killed builds");
    return BlobStore(root);
}

std::string BlobStore::path(const Digest& digest) const {
    return str_cat(m_root, "/blobs/", digest.algorithm(), "/", digest.encoded());
}

bool BlobStore::contains(const Digest& digest) const { return path_exists(path(digest)); }

Result<std::uint64_t> BlobStore::size(const Digest& digest) const {
    struct stat st;
    if (::stat(path(digest).c_str(), &st) != 0) return fail_errno(str_cat("stat blob ", digest.str()));
    return static_cast<std::uint64_t>(st.st_size);
}

Result<BlobIngest> BlobStore::begin(IngestDigest digest) const {
    // The temp file lives in ingest/ and is renamed to blobs/sha256/<hex> once verified.
    KILN_ASSIGN(AtomicFile file, AtomicFile::create(str_cat(m_root, "/ingest/blob")));
    return BlobIngest(m_root, std::move(file), digest);
}

Result<Digest> BlobStore::put(std::string_view bytes) const {
    KILN_ASSIGN(BlobIngest ingest, begin());
    KILN_TRY(ingest.writer().write(bytes));
    return ingest.commit();
}

Result<UniqueFd> BlobStore::open_blob(const Digest& digest) const {
    UniqueFd fd(::open(path(digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open blob ", digest.str()));
    return fd;
}

Result<std::string> BlobStore::read(const Digest& digest, size_t limit) const {
    return read_file(path(digest), limit);
}

}  // namespace kiln
