#pragma once
// ADD of a URL: http(s) downloads through the registry library's HttpClient (bounded waits, redirects, TLS),
// streamed to a file and hashed on the way. Git sources are recognised so that they can be refused clearly.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "registry/http.hpp"

namespace kiln {

// What an ADD source names, as BuildKit tells them apart.
enum class AddSourceKind { local, http, git };

// "https://host/x.tar.gz" is http; "git@host:repo", "git://…", "ssh://…" and http(s) URLs whose path ends in
// ".git" are git; anything else is a path in the build context.
AddSourceKind classify_add_source(std::string_view source);

// The file name ADD gives a download: the URL path's last segment, percent-decoded ("__unnamed__" when the
// path has none), as BuildKit's Dockerfile frontend names it.
std::string url_file_name(std::string_view url);

// Seconds since the epoch of an HTTP date (RFC 1123, RFC 850 or asctime form, as Go's http.ParseTime reads).
std::optional<std::int64_t> parse_http_date(std::string_view text);

// "sha256:<64 lowercase hex>" for ADD --checksum; an error says what is accepted.
Status validate_checksum(std::string_view checksum);

struct Download {
    std::string digest;  // "sha256:<hex>" of the bytes received
    std::uint64_t size = 0;
    std::optional<std::int64_t> last_modified;  // from the Last-Modified header
};

// GETs `url` (following redirects) into the new file `path`, streaming. A non-2xx answer fails naming the URL
// and the HTTP status; a stalled, trickling or unreachable server fails within the client's timeouts; a body
// past `max_size` bytes fails as soon as it passes it.
Result<Download> download_url(HttpClient& client, const std::string& url, const std::string& path,
                              std::uint64_t max_size);

// A build's downloads, each URL fetched once into `directory`: the cache key of an ADD without --checksum is
// the downloaded bytes' digest, and the step that then runs copies the same file. Safe to use from several
// stages at once.
class UrlDownloads {
public:
    struct File {
        std::string path;  // in `directory`; never modified
        Download download;
    };
    UrlDownloads(std::string directory, HttpClientOptions http, std::uint64_t max_size)
        : m_directory(std::move(directory)), m_http(std::move(http)), m_max_size(max_size) {}
    Result<File> fetch(const std::string& url);

private:
    struct Once {
        std::mutex mutex;
        std::optional<Result<File>> result;
    };
    std::string m_directory;
    HttpClientOptions m_http;
    std::uint64_t m_max_size;
    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<Once>> m_urls;
};

}  // namespace kiln
