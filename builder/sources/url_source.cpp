#include "builder/sources/url_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <ctime>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "images/digest.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// The URL's path: after "scheme://authority", before any query or fragment.
std::string_view url_path(std::string_view url) {
    size_t scheme_end = url.find("://");
    std::string_view rest = scheme_end == std::string_view::npos ? url : url.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?#");
    if (path_start == std::string_view::npos || rest[path_start] != '/') return {};
    rest = rest.substr(path_start);
    return rest.substr(0, rest.find_first_of("?#"));
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view text) {
    std::string decoded;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
            hex_digit(text[i + 2]) >= 0) {
            decoded += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
            i += 2;
        } else {
            decoded += text[i];
        }
    }
    return decoded;
}

// The URL without "user:password@", for messages.
std::string display_url(std::string_view url) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::string(url);
    size_t authority_end = url.find_first_of("/?#", scheme_end + 3);
    size_t at = url.substr(0, authority_end).rfind('@');
    if (at == std::string_view::npos || at < scheme_end) return std::string(url);
    return str_cat(url.substr(0, scheme_end + 3), url.substr(at + 1));
}

std::optional<int> month_index(std::string_view name) {
    static constexpr std::array<std::string_view, 12> k_months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (size_t i = 0; i < k_months.size(); ++i)
        if (k_months[i] == name) return static_cast<int>(i);
    return std::nullopt;
}

std::optional<int> number(std::string_view text, size_t min_digits, size_t max_digits) {
    if (text.size() < min_digits || text.size() > max_digits) return std::nullopt;
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

// "15:04:05" into `tm`.
bool parse_clock(std::string_view text, std::tm& tm) {
    std::vector<std::string> parts = split(text, ':');
    if (parts.size() != 3) return false;
    auto hour = number(parts[0], 2, 2), minute = number(parts[1], 2, 2), second = number(parts[2], 2, 2);
    if (!hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 60) return false;
    tm.tm_hour = *hour;
    tm.tm_min = *minute;
    tm.tm_sec = *second;
    return true;
}

std::vector<std::string> fields_of(std::string_view text) {
    std::vector<std::string> fields;
    for (const std::string& field : split(text, ' '))
        if (!field.empty()) fields.push_back(field);
    return fields;
}

}  // namespace

AddSourceKind classify_add_source(std::string_view source) {
    if (source.starts_with("git@") || source.starts_with("git://") || source.starts_with("ssh://"))
        return AddSourceKind::git;
    if (!source.starts_with("http://") && !source.starts_with("https://")) return AddSourceKind::local;
    return url_path(source).ends_with(".git") ? AddSourceKind::git : AddSourceKind::http;
}

std::string url_file_name(std::string_view url) {
    std::string path = percent_decode(url_path(url));
    while (!path.empty() && path.back() == '/') path.pop_back();
    std::string name = path.substr(path.rfind('/') + 1);
    // A name that would climb out of the destination, or that a path cannot hold, is no name at all.
    if (name.empty() || name == "." || name == ".." || name.find('\0') != std::string::npos)
        return "__unnamed__";
    return name;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) {
    std::vector<std::string> fields = fields_of(text);
    std::tm tm{};
    if (fields.size() == 6 && fields[0].ends_with(',') && fields[5] == "GMT") {
        // RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT"
        auto day = number(fields[1], 1, 2);
        auto month = month_index(fields[2]);
        auto year = number(fields[3], 4, 4);
        if (!day || !month || !year || !parse_clock(fields[4], tm)) return std::nullopt;
        tm.tm_mday = *day;
        tm.tm_mon = *month;
        tm.tm_year = *year - 1900;
    } else if (fields.size() == 4 && fields[0].ends_with(',') && fields[3] == "GMT") {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        std::vector<std::string> date = split(fields[1], '-');
        if (date.size() != 3) return std::nullopt;
        auto day = number(date[0], 2, 2);
        auto month = month_index(date[1]);
        auto year = number(date[2], 2, 2);
        if (!day || !month || !year || !parse_clock(fields[2], tm)) return std::nullopt;
        tm.tm_mday = *day;
        tm.tm_mon = *month;
        tm.tm_year = *year < 69 ? *year + 100 : *year;  // Go's two-digit years: 69–99 are 19xx
    } else if (fields.size() == 5) {
        // asctime: "Sun Nov  6 08:49:37 1994"
        auto month = month_index(fields[1]);
        auto day = number(fields[2], 1, 2);
        auto year = number(fields[4], 4, 4);
        if (!day || !month || !year || !parse_clock(fields[3], tm)) return std::nullopt;
        tm.tm_mday = *day;
        tm.tm_mon = *month;
        tm.tm_year = *year - 1900;
    } else {
        return std::nullopt;
    }
    if (tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
    return static_cast<std::int64_t>(::timegm(&tm));
}

Status validate_checksum(std::string_view checksum) {
    constexpr std::string_view k_prefix = "sha256:";
    if (!checksum.starts_with(k_prefix)) {
        size_t colon = checksum.find(':');
        if (colon != std::string_view::npos)
            return fail(str_cat("--checksum=", checksum, ": only sha256 digests are supported"));
        return fail(str_cat("--checksum=", checksum, ": expected sha256:<64 lowercase hex digits>"));
    }
    std::string_view hex = checksum.substr(k_prefix.size());
    bool valid = hex.size() == 64;
    for (char c : hex) valid = valid && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!valid) return fail(str_cat("--checksum=", checksum, ": expected sha256:<64 lowercase hex digits>"));
    return {};
}

Result<Download> download_url(HttpClient& client, const std::string& url, const std::string& path,
                              std::uint64_t max_size) {
    std::string shown = display_url(url);
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return fail_errno(str_cat("create ", path));
    FdWriter file(out.get(), path);
    BoundedWriter bounded(file, max_size);
    HashingWriter hashing(&bounded);
    HttpRequest request{.method = "GET", .url = url, .redirects = Redirects::follow};
    auto sent = client.send(request, hashing);
    if (bounded.overflowed())
        return fail(str_cat("downloading ", shown, ": more than ", format_bytes(max_size),
                            " (--max-download-size); stopped there"));
    KILN_ASSIGN(HttpResponse response, with_context(std::move(sent), str_cat("downloading ", shown)));
    if (!response.ok())
        return fail(
            str_cat("downloading ", shown, ": the server answered with HTTP status ", response.status));
    Download download{.digest = hashing.finish_digest(), .size = hashing.size()};
    if (auto modified = response.headers.get("Last-Modified"))
        download.last_modified = parse_http_date(*modified);
    return download;
}

Result<UrlDownloads::File> UrlDownloads::fetch(const std::string& url) {
    std::shared_ptr<Once> once;
    size_t number = 0;
    {
        std::lock_guard lock(m_mutex);
        std::shared_ptr<Once>& entry = m_urls[url];
        if (!entry) entry = std::make_shared<Once>();
        once = entry;
        number = m_urls.size();
    }
    std::lock_guard lock(once->mutex);
    if (!once->result) {
        once->result = [&]() -> Result<File> {
            KILN_TRY(make_directories(m_directory, 0700));
            File file{.path = str_cat(m_directory, "/", number, "-", Digest::of_bytes(url).encoded().substr(0, 16)),
                      .download = {}};
            HttpClient client(m_http);
            auto downloaded = download_url(client, url, file.path, m_max_size);
            // What a failed download wrote is of no use, and may be as large as the limit.
            if (!downloaded) ::unlink(file.path.c_str());
            KILN_ASSIGN(file.download, std::move(downloaded));
            return file;
        }();
    }
    return *once->result;
}

}  // namespace kiln
