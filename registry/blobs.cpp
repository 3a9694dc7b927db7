// RegistryClient's blob operations: verified streaming download, existence checks, monolithic upload.
#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/api_error.hpp"
#include "registry/client.hpp"
#include "registry/client_internal.hpp"

namespace kiln {
namespace {

// Refuses bytes beyond the size a descriptor promised, so a hostile registry cannot stream forever into a sink.
class BoundedWriter final : public Writer {
public:
    BoundedWriter(Writer& inner, std::uint64_t limit) : m_inner(inner), m_limit(limit) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        if (size > m_limit - m_size) {
            m_overflowed = true;
            return fail(str_cat("more than the expected ", m_limit, " bytes"));
        }
        m_size += size;
        return m_inner.write(buffer, size);
    }
    bool overflowed() const { return m_overflowed; }

private:
    Writer& m_inner;
    std::uint64_t m_limit;
    std::uint64_t m_size = 0;
    bool m_overflowed = false;
};

std::string blob_location(const Reference& repository) {
    return str_cat(repository.registry(), "/", repository.repository());
}

}  // namespace

Status RegistryClient::fetch_blob(const Reference& repository, const Descriptor& blob, Writer& sink) {
    std::string what = str_cat("GET blob ", blob.digest.str(), " from ", blob_location(repository));
    if (blob.digest.algorithm() != "sha256") return fail(str_cat(what, ": only sha256 digests can be verified"));
    if (blob.size < 0) return fail(str_cat(what, ": negative size in the descriptor"));
    auto expected_size = static_cast<std::uint64_t>(blob.size);
    HashingWriter hashing(&sink);
    BoundedWriter bounded(hashing, expected_size);
    HttpRequest request{.method = "GET",
                        .url = str_cat(repository_url(repository), "/blobs/", blob.digest.str()),
                        .redirects = Redirects::follow};
    auto response = exchange({what, repository, RepositoryAccess::pull}, std::move(request), {}, &bounded, 0);

    auto refused = [&](std::string_view why) {
        return fail(str_cat("blob ", blob.digest.str(), " from ", blob_location(repository), " failed verification: ",
                            why));
    };
    if (bounded.overflowed()) return refused(str_cat("the registry sent more than the expected ", expected_size, " bytes"));
    if (!response) return fail(std::move(response.error()));
    if (!response->ok()) return fail(http_status_error(what, *response));
    std::uint64_t received = hashing.size();
    std::string digest = hashing.finish_digest();
    if (received != expected_size)
        return refused(str_cat("received ", received, " bytes, expected ", expected_size));
    if (digest != blob.digest.str()) return refused(str_cat("the content has digest ", digest));
    return {};
}

Result<bool> RegistryClient::blob_exists(const Reference& repository, const Digest& digest) {
    return blob_exists(repository, digest, RepositoryAccess::pull);
}

Result<bool> RegistryClient::blob_exists(const Reference& repository, const Digest& digest, RepositoryAccess access) {
    std::string what = str_cat("HEAD blob ", digest.str(), " in ", blob_location(repository));
    HttpRequest request{.method = "HEAD",
                        .url = str_cat(repository_url(repository), "/blobs/", digest.str()),
                        .redirects = Redirects::follow,
                        .timeout = k_document_timeout};
    KILN_ASSIGN(HttpResponse response,
                exchange({what, repository, access}, std::move(request), {}, nullptr, k_small_response_limit));
    if (response.status == 200) return true;
    if (response.status == 404) return false;
    return fail(http_status_error(what, response));
}

Result<BlobPush> RegistryClient::push_blob(const Reference& repository, const Descriptor& blob, Reader& source) {
    if (blob.size < 0)
        return fail(str_cat("pushing blob ", blob.digest.str(), " to ", blob_location(repository), ": negative size"));
    KILN_ASSIGN(bool exists, blob_exists(repository, blob.digest, RepositoryAccess::push));
    if (exists) {
        log_debug("blob ", blob.digest.short_str(), " already in ", blob_location(repository));
        return BlobPush::already_present;
    }

    // Starting the upload has no body, so it is where a 401 gets answered; the PUT then reuses the token.
    std::string start_what = str_cat("POST blob upload to ", blob_location(repository));
    HttpRequest start{.method = "POST",
                      .url = str_cat(repository_url(repository), "/blobs/uploads/"),
                      .timeout = k_document_timeout};
    KILN_ASSIGN(HttpResponse started, exchange({start_what, repository, RepositoryAccess::push}, std::move(start), {},
                                               nullptr, k_small_response_limit));
    if (!started.ok()) return fail(http_status_error(start_what, started));
    std::optional<std::string> location = started.headers.get("Location");
    if (!location || trim(*location).empty())
        return fail(str_cat(start_what, ": HTTP ", started.status, " without a Location to upload to"));
    KILN_ASSIGN(std::string upload_url, with_context(resolve_url(started.url, trim(*location)), start_what));
    KILN_ASSIGN(upload_url, with_context(append_query(upload_url, "digest", blob.digest.str()), start_what));

    std::string what = str_cat("PUT blob ", blob.digest.str(), " to ", blob_location(repository));
    HashingReader hashing(source);
    HttpRequest upload{.method = "PUT", .url = upload_url};
    upload.headers.add("Content-Type", "application/octet-stream");
    RequestBody body{.stream = &hashing, .stream_size = static_cast<std::uint64_t>(blob.size)};
    KILN_ASSIGN(HttpResponse response, exchange({what, repository, RepositoryAccess::push}, std::move(upload), body,
                                                nullptr, k_small_response_limit));
    if (!response.ok()) return fail(http_status_error(what, response));
    // The registry verified the digest it was given; this catches a source that disagrees with its descriptor
    // against a registry that does not.
    std::string sent = hashing.finish_digest();
    if (sent != blob.digest.str())
        return fail(str_cat(what, ": the uploaded bytes have digest ", sent, ", not the descriptor's"));
    log_debug("pushed blob ", blob.digest.short_str(), " (", format_bytes(hashing.size()), ") to ",
              blob_location(repository));
    return BlobPush::uploaded;
}

}  // namespace kiln
