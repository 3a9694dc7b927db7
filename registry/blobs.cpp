// RegistryClient's blob operations: verified streaming download, existence checks, cross-repository mounts and
// uploads (one PUT for small blobs, PATCH chunks for large ones), each operation retried as a whole.
#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/api_error.hpp"
#include "registry/client.hpp"
#include "registry/client_internal.hpp"

namespace kiln {
namespace {

// A sink that cannot start over: it may "rewind" only while nothing has reached it.
class UntouchedWriter final : public RewindableWriter {
public:
    explicit UntouchedWriter(Writer& inner) : m_inner(inner) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        m_touched = m_touched || size > 0;
        return m_inner.write(buffer, size);
    }
    Status rewind() override {
        if (m_touched) return fail("the bytes already delivered cannot be taken back");
        return {};
    }

private:
    Writer& m_inner;
    bool m_touched = false;
};

// The next `limit` bytes of a stream: one chunk of a chunked upload.
class LimitedReader final : public Reader {
public:
    LimitedReader(Reader& inner, std::uint64_t limit) : m_inner(inner), m_left(limit) {}
    Result<size_t> read(char* buffer, size_t size) override {
        if (m_left == 0) return 0;
        KILN_ASSIGN(size_t n, m_inner.read(buffer, static_cast<size_t>(std::min<std::uint64_t>(size, m_left))));
        m_left -= n;
        return n;
    }

private:
    Reader& m_inner;
    std::uint64_t m_left;
};

std::string blob_location(const Reference& repository) {
    return str_cat(repository.registry(), "/", repository.repository());
}

// The upload URL a 202 names.
Result<std::string> upload_location(const HttpResponse& response, std::string_view what) {
    std::optional<std::string> location = response.headers.get("Location");
    if (!location || trim(*location).empty())
        return fail(str_cat(what, ": HTTP ", response.status, " without a Location to upload to"));
    return with_context(resolve_url(response.url, trim(*location)), what);
}

}  // namespace

// Where an upload goes: a URL to send the bytes to, unless a mount made it unnecessary.
struct RegistryClient::UploadSession {
    bool mounted = false;
    std::string location;
};

Status RegistryClient::fetch_blob(const Reference& repository, const Descriptor& blob, RewindableWriter& sink) {
    std::optional<Error> previous;
    std::string previous_wrong_digest;
    return with_retries(m_options.retry, [&](int attempt) -> Status {
        if (attempt > 1) {
            if (auto rewound = sink.rewind(); !rewound) return fail(std::move(*previous).set_retryable(false));
        }
        std::string wrong_digest;
        Status fetched = fetch_blob_once(repository, blob, sink, wrong_digest);
        if (fetched) return fetched;
        if (!wrong_digest.empty() && wrong_digest == previous_wrong_digest)
            return fail(Error(str_cat(fetched.error().message(), " (the same wrong content on tries ", attempt - 1,
                                      " and ", attempt, ": the registry holds these bytes, and no retry can change them)"))
                            .set_exit_code(fetched.error().exit_code()));
        previous_wrong_digest = std::move(wrong_digest);
        previous = fetched.error();
        return fetched;
    });
}

Status RegistryClient::fetch_blob(const Reference& repository, const Descriptor& blob, Writer& sink) {
    UntouchedWriter untouched(sink);
    return fetch_blob(repository, blob, static_cast<RewindableWriter&>(untouched));
}

Status RegistryClient::fetch_blob_once(const Reference& repository, const Descriptor& blob, Writer& sink,
                                       std::string& wrong_digest) {
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

    // A corrupted or cut transfer may be a proxy's or the network's fault: another try may get the right bytes.
    auto refused = [&](std::string_view why) {
        return fail(Error(str_cat("blob ", blob.digest.str(), " from ", blob_location(repository),
                                  " failed verification: ", why))
                        .set_retryable(true));
    };
    if (bounded.overflowed()) return refused(str_cat("the registry sent more than the expected ", expected_size, " bytes"));
    if (!response) return fail(std::move(response.error()));
    if (!response->ok()) return fail(http_status_error(what, *response));
    std::uint64_t received = hashing.size();
    std::string digest = hashing.finish_digest();
    if (received != expected_size)
        return refused(str_cat("received ", received, " bytes, expected ", expected_size));
    if (digest != blob.digest.str()) {
        wrong_digest = digest;
        return refused(str_cat("the content has digest ", digest));
    }
    return {};
}

Result<bool> RegistryClient::blob_exists(const Reference& repository, const Digest& digest) {
    return with_retries(m_options.retry, [&](int) { return blob_exists(repository, digest, RepositoryAccess::pull); });
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

Result<BlobPush> RegistryClient::push_blob(const Reference& repository, const Descriptor& blob, const BlobOpener& open,
                                           const std::optional<Reference>& mount_from, BlobBytes bytes) {
    if (blob.size < 0)
        return fail(str_cat("pushing blob ", blob.digest.str(), " to ", blob_location(repository), ": negative size"));
    return with_retries(m_options.retry,
                        [&](int) { return push_blob_once(repository, blob, open, mount_from, bytes); });
}

Result<BlobPush> RegistryClient::push_blob(const Reference& repository, const Descriptor& blob, Reader& source) {
    if (blob.size < 0)
        return fail(str_cat("pushing blob ", blob.digest.str(), " to ", blob_location(repository), ": negative size"));
    bool opened = false;
    BlobOpener once = [&]() -> Result<std::unique_ptr<Reader>> {
        if (opened) return fail("the blob's source can be read only once");
        opened = true;
        return std::make_unique<BorrowedReader>(source);
    };
    std::optional<Error> previous;
    return with_retries(m_options.retry, [&](int) -> Result<BlobPush> {
        // Once bytes were read, the stream cannot be sent again: the last try's error is the answer.
        if (opened) return fail(std::move(*previous).set_retryable(false));
        auto pushed = push_blob_once(repository, blob, once, std::nullopt, BlobBytes::at_hand);
        if (!pushed) previous = pushed.error();
        return pushed;
    });
}

Result<BlobPush> RegistryClient::push_blob_once(const Reference& repository, const Descriptor& blob,
                                                const BlobOpener& open, const std::optional<Reference>& mount_from,
                                                BlobBytes bytes) {
    if (bytes != BlobBytes::at_hand || blob.size > k_send_unasked_size) {
        KILN_ASSIGN(bool exists, blob_exists(repository, blob.digest, RepositoryAccess::push));
        if (exists) {
            log_debug("blob ", blob.digest.short_str(), " already in ", blob_location(repository));
            return BlobPush::already_present;
        }
    }
    KILN_ASSIGN(UploadSession session, start_upload(repository, blob, mount_from));
    if (session.mounted) return BlobPush::mounted;

    std::string what = str_cat("uploading blob ", blob.digest.str(), " to ", blob_location(repository));
    auto source = open();
    if (!source) return fail(std::move(source.error()).context(what));
    HashingReader hashing(**source);
    if (static_cast<std::uint64_t>(blob.size) <= m_options.upload_chunk_size) {
        KILN_TRY(upload_monolithic(repository, blob, session.location, hashing));
    } else {
        KILN_TRY(upload_chunked(repository, blob, session.location, hashing));
    }
    // The registry verified the digest it was given; this catches a source that disagrees with its descriptor
    // against a registry that does not.
    std::string sent = hashing.finish_digest();
    if (sent != blob.digest.str())
        return fail(str_cat(what, ": the uploaded bytes have digest ", sent, ", not the descriptor's"));
    log_debug("pushed blob ", blob.digest.short_str(), " (", format_bytes(hashing.size()), ") to ",
              blob_location(repository));
    return BlobPush::uploaded;
}

Result<RegistryClient::UploadSession> RegistryClient::start_upload(const Reference& repository, const Descriptor& blob,
                                                                   const std::optional<Reference>& mount_from) {
    // Starting the upload has no body, so it is where a 401 gets answered; the upload then reuses the token.
    std::string what = str_cat("POST blob upload to ", blob_location(repository));
    std::string url = str_cat(repository_url(repository), "/blobs/uploads/");
    Call call{what, repository, RepositoryAccess::push};
    bool mounting = mount_from && mount_from->registry() == repository.registry() &&
                    mount_from->repository() != repository.repository();
    if (mounting) {
        call.what = str_cat("mounting blob ", blob.digest.str(), " from ", mount_from->repository(), " into ",
                            blob_location(repository));
        call.extra_scope = repository_scope(mount_from->repository(), RepositoryAccess::pull);
        KILN_ASSIGN(url, with_context(append_query(url, "mount", blob.digest.str()), what));
        KILN_ASSIGN(url, with_context(append_query(url, "from", mount_from->repository()), what));
    }
    HttpRequest start{.method = "POST", .url = url, .timeout = k_document_timeout};
    KILN_ASSIGN(HttpResponse started, exchange(call, std::move(start), {}, nullptr, k_small_response_limit));
    if (mounting && started.status == 201) {
        log_debug("mounted blob ", blob.digest.short_str(), " from ", mount_from->repository(), " into ",
                  blob_location(repository));
        return UploadSession{.mounted = true};
    }
    // 202: an upload to make (a refused mount starts one too).
    if (started.status != 202) return fail(http_status_error(call.what, started));
    KILN_ASSIGN(std::string location, upload_location(started, call.what));
    return UploadSession{.location = std::move(location)};
}

Status RegistryClient::upload_monolithic(const Reference& repository, const Descriptor& blob,
                                         const std::string& location, Reader& source) {
    std::string what = str_cat("PUT blob ", blob.digest.str(), " to ", blob_location(repository));
    KILN_ASSIGN(std::string url, with_context(append_query(location, "digest", blob.digest.str()), what));
    HttpRequest upload{.method = "PUT", .url = url};
    upload.headers.add("Content-Type", "application/octet-stream");
    RequestBody body{.stream = &source, .stream_size = static_cast<std::uint64_t>(blob.size)};
    KILN_ASSIGN(HttpResponse response, exchange({what, repository, RepositoryAccess::push}, std::move(upload), body,
                                                nullptr, k_small_response_limit));
    if (response.status != 201 && !response.ok()) return fail(http_status_error(what, response));
    return {};
}

Status RegistryClient::upload_chunked(const Reference& repository, const Descriptor& blob, std::string location,
                                      Reader& source) {
    auto total = static_cast<std::uint64_t>(blob.size);
    std::uint64_t sent = 0;
    while (sent < total) {
        std::uint64_t length = std::min(m_options.upload_chunk_size, total - sent);
        std::string what = str_cat("PATCH blob ", blob.digest.str(), " to ", blob_location(repository), " (bytes ",
                                   sent, "-", sent + length - 1, ")");
        LimitedReader chunk(source, length);
        HttpRequest request{.method = "PATCH", .url = location};
        request.headers.add("Content-Type", "application/octet-stream");
        request.headers.add("Content-Range", str_cat(sent, "-", sent + length - 1));
        RequestBody body{.stream = &chunk, .stream_size = length};
        KILN_ASSIGN(HttpResponse response, exchange({what, repository, RepositoryAccess::push}, std::move(request),
                                                    body, nullptr, k_small_response_limit));
        if (response.status != 202) return fail(http_status_error(what, response));
        sent += length;
        // The registry says what it holds (Range: 0-<last byte>) and where the upload continues.
        if (auto range = response.headers.get("Range")) {
            std::string_view text = trim(*range);
            if (text.starts_with("bytes=")) text.remove_prefix(6);
            std::uint64_t last = 0;
            size_t dash = text.find('-');
            if (dash == std::string_view::npos || !parse_uint64(text.substr(dash + 1), last) || last + 1 != sent)
                return fail(Error(str_cat(what, ": the registry holds bytes ", text, " after ", sent, " were sent"))
                                .set_retryable(true));
        }
        KILN_ASSIGN(location, upload_location(response, what));
    }
    std::string what = str_cat("PUT blob ", blob.digest.str(), " to ", blob_location(repository), " (completing)");
    KILN_ASSIGN(std::string url, with_context(append_query(location, "digest", blob.digest.str()), what));
    HttpRequest finish{.method = "PUT", .url = url, .timeout = k_document_timeout};
    KILN_ASSIGN(HttpResponse response, exchange({what, repository, RepositoryAccess::push}, std::move(finish),
                                                {.bytes = std::string_view()}, nullptr, k_small_response_limit));
    if (response.status != 201 && !response.ok()) return fail(http_status_error(what, response));
    return {};
}

Status RegistryClient::check_push_permission(const Reference& repository) {
    std::string what = str_cat("checking push access to ", blob_location(repository));
    return with_retries(m_options.retry, [&](int) -> Status {
        HttpRequest start{.method = "POST",
                          .url = str_cat(repository_url(repository), "/blobs/uploads/"),
                          .timeout = k_document_timeout};
        KILN_ASSIGN(HttpResponse started, exchange({what, repository, RepositoryAccess::push}, std::move(start), {},
                                                   nullptr, k_small_response_limit));
        if (started.status == 401 || started.status == 403) {
            // A 403, or a 401 for want of scope after a token was issued, means the identity is known but may
            // not push; any other 401 means the registry did not accept who we said we were.
            std::string challenge = to_lower(join(started.headers.get_all("WWW-Authenticate"), " "));
            bool scope = started.status == 403 || challenge.find("insufficient_scope") != std::string::npos;
            std::string why = scope ? str_cat("the credentials for ", repository.registry(),
                                              " do not allow pushing to ", repository.repository())
                                    : str_cat(repository.registry(), " did not accept the credentials kiln has for it, "
                                                                     "or needs some and kiln has none");
            return fail(Error(str_cat(http_status_error(what, started).message(), " (", why, ")")));
        }
        if (started.status != 202) return fail(http_status_error(what, started));
        // Cancel the probe's upload; a registry that cannot is no reason to fail the build.
        if (auto location = upload_location(started, what)) {
            HttpRequest cancel{.method = "DELETE", .url = *location, .timeout = k_document_timeout};
            auto cancelled = exchange({what, repository, RepositoryAccess::push}, std::move(cancel), {}, nullptr,
                                      k_small_response_limit);
            if (!cancelled || (!cancelled->ok() && cancelled->status != 404))
                log_debug(what, ": could not cancel the probe upload");
        }
        return {};
    });
}

}  // namespace kiln
