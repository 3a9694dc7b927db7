#include "builder/sources/context_source.hpp"

#include <fcntl.h>

#include <filesystem>

#include "builder/sources/archive_source.hpp"
#include "builder/sources/git_source.hpp"
#include "builder/sources/url_source.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

// A tar context or a Dockerfile on stdin larger than this is refused: the disk a build uses is bounded.
constexpr std::uint64_t k_max_stdin_bytes = 8ull << 30;
constexpr size_t k_max_dockerfile = 16 << 20;

// Counts what passes, refusing more than a limit.
class BoundedWriter final : public Writer {
public:
    BoundedWriter(Writer& inner, std::uint64_t limit, std::string what)
        : m_inner(inner), m_limit(limit), m_what(std::move(what)) {}
    using Writer::write;
    Status write(const char* buffer, size_t size) override {
        m_written += size;
        if (m_written > m_limit) return fail(str_cat(m_what, " is larger than ", format_bytes(m_limit)));
        return m_inner.write(buffer, size);
    }

private:
    Writer& m_inner;
    std::uint64_t m_limit;
    std::string m_what;
    std::uint64_t m_written = 0;
};

Status save_stdin(int fd, const std::string& path, std::uint64_t limit, const std::string& what) {
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return fail_errno(str_cat("create ", path));
    FdReader in(fd, "stdin");
    FdWriter file(out.get(), path);
    BoundedWriter bounded(file, limit, what);
    KILN_TRY_CONTEXT(copy_stream(in, bounded), "reading " + what + " from stdin");
    return {};
}

// Unpacks the archive `archive` into `<work>/context`; an error names `shown` (the context as given).
Result<std::string> unpack_context(const std::string& archive, const std::string& work_dir, const std::string& shown) {
    std::string directory = work_dir + "/context";
    KILN_TRY(make_directories(directory, 0755));
    KILN_ASSIGN(RootFs from, RootFs::open(parent_path(archive)));
    KILN_ASSIGN(RootFs to, RootFs::open(directory));
    KILN_ASSIGN(bool is_tar, is_tar_archive(from, file_name(archive)));
    if (!is_tar) return fail(str_cat("--context ", shown, ": not a tar archive (plain, gzip, bzip2, xz or zstd)"));
    std::vector<std::string> written;
    ArchiveUnpack options{.owner = std::nullopt, .ownership_failure = OwnershipFailure::warn_once};
    KILN_TRY_CONTEXT(unpack_archive(from, file_name(archive), to, "/", options, written), "--context " + shown);
    log_info("context: ", shown, ", ", written.size(), " path(s) unpacked");
    return directory;
}

// `sub` inside the context directory `root`, whatever it says: an absolute path, .. or a symlink cannot leave it.
// `what` names it in errors ("--context-sub-path x").
Result<std::string> directory_inside(const std::string& root_directory, const std::string& sub, const std::string& what) {
    if (sub.starts_with("/") || escapes_root(sub)) return fail(str_cat(what, ": must name a directory inside the context"));
    std::error_code error;
    std::filesystem::path root = std::filesystem::canonical(root_directory, error);
    std::filesystem::path inside = std::filesystem::canonical(root / clean_path(sub), error);
    if (error || !std::filesystem::is_directory(inside)) return fail(str_cat(what, ": no such directory in the context"));
    auto relative = inside.lexically_relative(root).string();
    if (relative == ".." || relative.starts_with("../")) return fail(str_cat(what, ": leads outside the context"));
    return inside.string();
}

Result<std::string> context_directory(const ContextInputs& inputs, bool dockerfile_from_stdin) {
    const std::string& context = inputs.context;
    if (context.starts_with("dir://")) return context.substr(6);
    for (std::string_view bucket : {"s3://", "gs://", "az://", "azblob://"})
        if (context.starts_with(bucket))
            return fail(str_cat("--context ", context, ": ", bucket.substr(0, bucket.size() - 3),
                                " contexts are not supported: download the context and pass --context=DIR or "
                                "--context=tar://FILE"));
    if (is_git_context(context)) {
        KILN_ASSIGN(GitUrl url, parse_git_context(context));
        KILN_ASSIGN(std::string checkout, fetch_git_context(GitFetch{.url = url,
                                                                     .options = inputs.git,
                                                                     .directory = inputs.work_dir + "/context",
                                                                     .environment = inputs.environment}));
        if (url.subdir.empty()) return checkout;
        return directory_inside(checkout, url.subdir, str_cat("--context ", context, " (its subdirectory)"));
    }
    if (context.starts_with("tar://")) {
        std::string path = context.substr(6);
        if (path == "stdin") {
            if (dockerfile_from_stdin)
                return fail("--context tar://stdin and --dockerfile - cannot both read stdin");
            std::string saved = inputs.work_dir + "/context-stdin.tar";
            KILN_TRY(save_stdin(inputs.stdin_fd, saved, k_max_stdin_bytes, "the context"));
            return unpack_context(saved, inputs.work_dir, context);
        }
        if (!path_exists(path)) return fail(str_cat("--context ", context, ": ", path, " does not exist"));
        return unpack_context(std::filesystem::absolute(path).string(), inputs.work_dir, context);
    }
    if (context.starts_with("https://") || context.starts_with("http://")) {
        UrlDownloads downloads(inputs.work_dir + "/context-download", inputs.http, inputs.max_download_size);
        KILN_ASSIGN(UrlDownloads::File file, with_context(downloads.fetch(context), "--context " + context));
        log_info("context: downloaded ", format_bytes(file.download.size), " ", file.download.digest);
        return unpack_context(file.path, inputs.work_dir, context);
    }
    if (context.find("://") != std::string::npos)
        return fail(str_cat("--context ", context, ": unknown scheme (use a directory, dir://, tar:// or https://)"));
    return context;
}

}  // namespace

Result<PreparedContext> prepare_context(const ContextInputs& inputs) {
    bool dockerfile_from_stdin = inputs.dockerfile == "-";
    PreparedContext prepared;
    KILN_ASSIGN(prepared.directory, context_directory(inputs, dockerfile_from_stdin));
    if (!inputs.sub_path.empty()) {
        KILN_ASSIGN(prepared.directory,
                    directory_inside(prepared.directory, inputs.sub_path, "--context-sub-path " + inputs.sub_path));
    }
    if (dockerfile_from_stdin) {
        prepared.dockerfile = inputs.work_dir + "/Dockerfile.stdin";
        KILN_TRY(save_stdin(inputs.stdin_fd, prepared.dockerfile, k_max_dockerfile, "the Dockerfile"));
    } else if (inputs.dockerfile.starts_with("/") ||
               (inputs.context.find("://") == std::string::npos && path_exists(inputs.dockerfile))) {
        // Kaniko's rule: the Dockerfile as given if it exists, else relative to the context. An unpacked
        // context's Dockerfile is always the one inside it.
        prepared.dockerfile = inputs.dockerfile;
    } else {
        prepared.dockerfile = prepared.directory + "/" + inputs.dockerfile;
    }
    return prepared;
}

}  // namespace kiln
