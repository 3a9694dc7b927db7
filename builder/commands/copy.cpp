// COPY and ADD, executed: the source patterns are matched against the source's filesystem (the selection),
// then every selected file, URL and heredoc is written into the stage's rootfs, and the paths written are
// reported.

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>

#include "builder/commands/commands.hpp"
#include "builder/run/user_db.hpp"
#include "builder/sources/archive_source.hpp"
#include "builder/sources/context.hpp"
#include "builder/sources/copy_files.hpp"
#include "builder/sources/url_source.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

// `path` below `base` ("" when they are the same); both cleaned, `path` at or under `base`.
std::string relative_to(const std::string& path, const std::string& base) {
    if (path == base) return "";
    return base.empty() ? path : path.substr(base.size() + 1);
}

// Matches a step's patterns against its source: what the step will copy.
class Selector {
public:
    Selector(const CopyStep& copy, CopySelection& selection, const SourceLocation& at)
        : m_copy(copy), m_selection(selection), m_at(at) {}

    // The selection: every source pattern matched against the source root, URLs as they are.
    Status select() {
        for (const std::string& source : m_copy.sources) {
            if (classify_add_source(source) == AddSourceKind::http) {
                m_selection.sources.push_back(SelectedSource{.path = source, .is_url = true});
                continue;
            }
            KILN_TRY(m_copy.parents ? select_with_parents(source) : select_local(source));
        }
        return {};
    }

private:
    // Wildcard matches that an --exclude pattern names (relative to the pattern's fixed part) are dropped.
    Status select_local(const std::string& pattern) {
        KILN_ASSIGN(auto matched, located(expand_sources(m_selection.root, pattern, m_selection.ignore)));
        std::string base = wildcard_base(pattern);
        bool wildcard = has_wildcards(pattern);
        for (std::string& path : matched) {
            if (wildcard && m_selection.exclude && m_selection.exclude->matches(relative_to(path, base))) continue;
            m_selection.sources.push_back(SelectedSource{.path = std::move(path)});
        }
        return {};
    }

    // BuildKit's --parents: "a/b/c.txt" keeps "a/b/" below the destination; "a/./b/c.txt" only "b/", the part
    // after the "/./" pivot. Excludes are relative to the pivot.
    Status select_with_parents(const std::string& source) {
        size_t cut = source.find("/./");
        std::string pivot_pattern = cut == std::string::npos ? "" : source.substr(0, cut);
        std::string pattern = clean_path(cut == std::string::npos ? source : source.substr(cut + 3));
        std::vector<std::string> pivots = {clean_path(pivot_pattern)};
        if (has_wildcards(pivot_pattern)) {
            KILN_ASSIGN(pivots, located(expand_sources(m_selection.root, pivot_pattern, m_selection.ignore)));
        }
        for (const std::string& pivot : pivots) {
            KILN_ASSIGN(auto matched,
                        located(expand_sources(m_selection.root, join_path(pivot, pattern), m_selection.ignore)));
            for (std::string& path : matched) {
                std::string relative = relative_to(path, pivot);
                if (m_selection.exclude && !relative.empty() && m_selection.exclude->matches(relative)) continue;
                m_selection.sources.push_back(SelectedSource{.path = std::move(path), .pivot = pivot});
            }
        }
        return {};
    }

    template <class T>
    Result<T> located(Result<T> result) const {
        return with_location(std::move(result), m_at);
    }

    const CopyStep& m_copy;
    CopySelection& m_selection;
    const SourceLocation& m_at;
};

// One COPY or ADD step against its source and the stage's rootfs.
class CopyOperation {
public:
    CopyOperation(StepContext& context, const CopyStep& copy) : m_context(context), m_copy(copy) {}
    CopyOperation(const CopyOperation&) = delete;
    CopyOperation& operator=(const CopyOperation&) = delete;

    Result<StepWrites> run() {
        KILN_TRY(resolve_options());
        KILN_ASSIGN(SourceDirectory from, located(source_directory(m_context, m_copy.from)));
        KILN_ASSIGN(CopySelection selection, select_copy_sources(from, m_copy, at()));
        m_selection.emplace(std::move(selection));
        m_options.ignore = m_selection->ignore;
        if (m_selection->exclude) m_options.exclude = &*m_selection->exclude;
        m_dest_is_dir = m_copy.destination_is_directory ||
                        rootfs().open(m_copy.destination, O_PATH | O_DIRECTORY).has_value();
        size_t total = m_selection->sources.size() + m_copy.inline_sources.size();
        if (total > 1 && !m_dest_is_dir)
            return fail(error("when copying more than one source, the destination must be a directory and end with a /"));
        if (total == 0) log_warn(format_location(at()), ": the source patterns match no files; nothing is copied");
        for (const SelectedSource& source : m_selection->sources)
            KILN_TRY(source.is_url ? copy_url(source.path) : copy_local(source));
        for (const dockerfile::HeredocFile& file : m_copy.inline_sources) KILN_TRY(copy_inline(file));
        return StepWrites{.paths = std::move(m_written)};
    }

private:
    bool is_add() const { return m_copy.command == CopyCommand::add; }
    const SourceLocation& at() const { return m_context.step.location; }
    const RootFs& rootfs() const { return m_context.filesystem.root(); }
    Error error(std::string message) const { return Error(std::move(message)).at(at()); }
    template <class T>
    Result<T> located(Result<T> result) const {
        return with_location(std::move(result), at());
    }

    Status resolve_options() {
        if (!m_copy.chown.empty()) {
            KILN_ASSIGN(auto ids, located(resolve_chown(rootfs(), m_copy.chown)));
            m_chown = CopyOwner{ids.first, ids.second};
            m_options.owner = m_chown;
        } else if (m_copy.from.kind == SourceRef::Kind::context) {
            // Context files belong to root in the image, whoever owns them here.
            m_options.owner = CopyOwner{0, 0};
        }
        m_options.mode = m_copy.mode;
        return {};
    }

    Status copy_local(const SelectedSource& source) {
        const RootFs& from = m_selection->root;
        if (source.pivot)
            return located(copy_path_with_parents(from, *source.pivot, relative_to(source.path, *source.pivot),
                                                  rootfs(), m_copy.destination, m_options, m_written));
        if (is_add()) {
            KILN_ASSIGN(bool archive, located(is_tar_archive(from, source.path)));
            if (archive) return unpack(source.path);
        }
        KILN_ASSIGN(UniqueFd probe, located(from.open(source.path, O_PATH)));
        struct stat st;
        if (::fstat(probe.get(), &st) != 0)
            return fail(Error::from_errno(str_cat("stat ", from.display(source.path)), errno).at(at()));
        std::string target = S_ISDIR(st.st_mode) || !m_dest_is_dir ? m_copy.destination
                                                                    : join_path(m_copy.destination, file_name(source.path));
        return located(copy_path(from, source.path, rootfs(), target, m_options, m_written));
    }

    // A local archive is unpacked into the destination, which is then a directory whatever it ends with.
    Status unpack(const std::string& path) {
        if (m_options.mode && !m_warned_chmod) {
            log_warn(format_location(at()), ": --chmod does not apply to the files of an unpacked archive (as in Docker)");
            m_warned_chmod = true;
        }
        log_info("  unpacking ", path, " into /", m_copy.destination);
        ArchiveUnpack unpack{.owner = m_chown, .ownership_failure = m_context.build.host.ownership};
        return located(unpack_archive(m_selection->root, path, rootfs(), m_copy.destination, unpack, m_written));
    }

    // Downloads into the work directory (verified before anything reaches the rootfs), then copies the file
    // in with BuildKit's metadata: mode 0600 unless --chmod, the Last-Modified time (else the epoch), root or
    // --chown.
    Status copy_url(const std::string& url) {
        KILN_ASSIGN(UrlDownloads::File fetched, located(m_context.build.downloads.fetch(url)));
        const std::string& file = fetched.path;
        const Download& download = fetched.download;
        if (!m_copy.checksum.empty() && download.digest != m_copy.checksum)
            return fail(error(str_cat("checksum mismatch for ", url, ": expected ", m_copy.checksum, ", got ",
                                      download.digest)));
        log_info("  downloaded ", url_file_name(url), ": ", format_bytes(download.size), " ", download.digest);
        timespec times[2] = {{download.last_modified.value_or(0), 0}, {download.last_modified.value_or(0), 0}};
        if (::utimensat(AT_FDCWD, file.c_str(), times, 0) != 0) return fail_errno(str_cat("set times of ", file));
        KILN_ASSIGN(RootFs downloads, RootFs::open(parent_path(file)));
        std::string target = m_dest_is_dir ? join_path(m_copy.destination, url_file_name(url)) : m_copy.destination;
        CopyOptions options{.owner = m_options.owner, .mode = m_options.mode};
        return located(copy_path(downloads, file_name(file), rootfs(), target, options, m_written));
    }

    Status copy_inline(const dockerfile::HeredocFile& file) {
        std::string target = m_dest_is_dir ? join_path(m_copy.destination, file.name) : m_copy.destination;
        return located(write_inline_file(rootfs(), target, file.content, m_options, m_written));
    }

    StepContext& m_context;
    const CopyStep& m_copy;
    CopyOptions m_options;
    std::optional<CopyOwner> m_chown;  // --chown alone: archives keep their owners without it
    std::optional<CopySelection> m_selection;
    bool m_dest_is_dir = false;
    std::vector<std::string> m_written;
    bool m_warned_chmod = false;
};

}  // namespace

Result<CopySelection> select_copy_sources(const SourceDirectory& from, const CopyStep& copy, const SourceLocation& at) {
    KILN_ASSIGN(RootFs root, with_location(RootFs::open(from.path), at));
    CopySelection selection{.root = std::move(root), .ignore = from.ignore, .exclude = {}, .sources = {}};
    if (!copy.excludes.empty()) {
        KILN_ASSIGN(selection.exclude, with_location(with_context(dockerfile::IgnoreMatcher::from_patterns(copy.excludes),
                                                                  "--exclude"),
                                                     at));
    }
    KILN_TRY(Selector(copy, selection, at).select());
    return selection;
}

Result<StepWrites> execute_copy(StepContext& context, const CopyStep& copy) {
    CopyOperation operation(context, copy);
    return operation.run();
}

}  // namespace kiln
