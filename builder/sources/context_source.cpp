#include "builder/sources/context_source.hpp"

#include <fcntl.h>

#include <filesystem>

#include "builder/sources/archive_source.hpp"
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

bool is_git_url(std::string_view context) {
    return context.starts_with("git://") || context.starts_with("git@") || context.starts_with("ssh://") ||
           ((context.starts_with("https://") || context.starts_with("http://")) &&
            (context.ends_with(".git") || context.find(".git#") != std::string_view::npos));
}

Result<std::string> context_directory(const ContextInputs& inputs, bool dockerfile_from_stdin) {
    const std::string& context = inputs.context;
    if (context.starts_with("dir://")) return context.substr(6);
    for (std::string_view bucket : {"s3://", "gs://", "az://", "azblob://"})
        if (context.starts_with(bucket))
            return fail(str_cat("--context ", context, ": ", bucket.substr(0, bucket.size() - 3),
                                " contexts are not supported: download the context and pass --context=DIR or "
                                "--context=tar://FILE"));
    if (is_git_url(context))
        return fail(str_cat("--context ", context,
                            ": git contexts are not supported yet: check the repository out and pass --context=DIR"));
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
        UrlDownloads downloads(inputs.work_dir + "/context-download");
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
        // Inside the context, whatever it says: an absolute path, .. or a symlink cannot leave it.
        if (inputs.sub_path.starts_with("/") || escapes_root(inputs.sub_path))
            return fail(str_cat("--context-sub-path ", inputs.sub_path, ": must name a directory inside the context"));
        std::error_code error;
        std::filesystem::path root = std::filesystem::canonical(prepared.directory, error);
        std::filesystem::path sub = std::filesystem::canonical(root / clean_path(inputs.sub_path), error);
        if (error || !std::filesystem::is_directory(sub))
            return fail(str_cat("--context-sub-path ", inputs.sub_path, ": no such directory in the context"));
        auto relative = sub.lexically_relative(root).string();
        if (relative == ".." || relative.starts_with("../"))
            return fail(str_cat("--context-sub-path ", inputs.sub_path, ": leads outside the context"));
        prepared.directory = sub.string();
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
