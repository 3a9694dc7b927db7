#include "builder/commands/commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>

#include "builder/sources/archive_source.hpp"
#include "builder/sources/image_source.hpp"
#include "builder/sources/copy_files.hpp"
#include "common/files.hpp"
#include "builder/sources/source_filesystem.hpp"
#include "builder/sources/url_source.hpp"
#include "builder/run/user_db.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

std::string basename_of(const std::string& cleaned) {
    size_t slash = cleaned.rfind('/');
    return slash == std::string::npos ? cleaned : cleaned.substr(slash + 1);
}

// `path` below `base` ("" when they are the same); both cleaned, `path` at or under `base`.
std::string relative_to(const std::string& path, const std::string& base) {
    if (path == base) return "";
    return base.empty() ? path : path.substr(base.size() + 1);
}

// One thing to copy once the patterns are expanded: a path in the source root, or a URL to download.
struct PlannedSource {
    std::string path;
    bool is_url = false;
    std::optional<std::string> pivot;  // --parents: lands at <destination>/<path below pivot>
};

// One COPY or ADD: flags resolved, sources expanded, then everything written and committed as one layer.
class CopyOperation {
public:
    CopyOperation(StageState& state, const dockerfile::InstructionBase& at, const CopyRequest& request)
        : m_state(state), m_at(at), m_request(request) {}
    CopyOperation(const CopyOperation&) = delete;
    CopyOperation& operator=(const CopyOperation&) = delete;

    Status run() {
        KILN_TRY(resolve_flags());
        KILN_TRY(open_source_root());
        KILN_TRY(resolve_destination());
        KILN_TRY(plan_sources());
        size_t total = m_sources.size() + m_request.inline_sources.size();
        if (total > 1 && !m_dest_is_dir)
            return fail(error(
                "when copying more than one source, the destination must be a directory and end with a /"));
        if (total == 0) log_warn(where(), ": the source patterns match no files; nothing is copied");
        for (const PlannedSource& source : m_sources)
            KILN_TRY(source.is_url ? copy_url(source.path) : copy_local(source));
        for (const dockerfile::HeredocFile& file : m_request.inline_sources) KILN_TRY(copy_inline(file));
        std::vector<LayerEntry> entries;
        for (const std::string& path : m_written) entries.push_back(LayerEntry{.path = path});
        return m_state.commit_layer(entries, m_at.original);
    }

private:
    bool is_add() const { return m_request.command == CopyCommand::add; }
    std::string where() const { return m_state.where(m_at); }
    Error error(std::string message) const { return instruction_error(m_state, m_at, std::move(message)); }

    Status resolve_flags() {
        if (!m_request.chown.empty()) {
            KILN_ASSIGN(std::string chown, m_state.expand(m_request.chown, m_at));
            KILN_ASSIGN(auto ids, with_context(resolve_chown(m_state.rootfs, chown), where()));
            m_chown = CopyOwner{ids.first, ids.second};
            m_options.owner = m_chown;
        } else if (m_request.from.empty()) {
            // Context files belong to root in the image, whoever owns them here.
            m_options.owner = CopyOwner{0, 0};
        }
        if (!m_request.chmod.empty()) {
            KILN_ASSIGN(std::string chmod, m_state.expand(m_request.chmod, m_at));
            KILN_ASSIGN(m_options.mode, with_context(ModeChange::parse(chmod), where()));
        }
        if (!m_request.excludes.empty()) {
            std::vector<std::string> patterns;
            for (const std::string& raw : m_request.excludes) {
                KILN_ASSIGN(std::string pattern, m_state.expand(raw, m_at));
                patterns.push_back(std::move(pattern));
            }
            KILN_ASSIGN(m_exclude, with_context(dockerfile::IgnoreMatcher::from_patterns(patterns),
                                                where() + ": --exclude"));
            m_options.exclude = &*m_exclude;
        }
        if (!m_request.checksum.empty()) {
            KILN_ASSIGN(m_checksum, m_state.expand(m_request.checksum, m_at));
            KILN_TRY_CONTEXT(validate_checksum(m_checksum), where());
            if (m_request.sources.size() != 1 || !m_request.inline_sources.empty())
                return fail(error("--checksum can't be specified for multiple sources"));
        }
        return {};
    }

    Status open_source_root() {
        if (m_request.from.empty()) {
            m_options.ignore = m_state.session.context.ignore();
            m_from = &m_state.session.context.root();
            return {};
        }
        KILN_ASSIGN(std::string from, m_state.expand(m_request.from, m_at));
        KILN_ASSIGN(std::string dir, source_filesystem(m_state, m_at, from));
        KILN_ASSIGN(m_source_root, RootFs::open(dir));
        m_from = &*m_source_root;
        return {};
    }

    // Docker's rules: a destination ending in "/" (or "." or "..") is a directory, a relative one is below
    // WORKDIR, and an existing directory is one whatever it ends with.
    Status resolve_destination() {
        KILN_ASSIGN(std::string destination, m_state.expand(m_request.destination, m_at));
        if (destination.empty()) return fail(error("the destination is empty"));
        m_dest_is_dir = m_request.parents || destination.back() == '/' || destination == "." ||
                        destination == ".." || destination.ends_with("/.") || destination.ends_with("/..");
        if (destination.front() != '/') {
            const std::string& workdir = m_state.image.config().config.working_dir;
            destination = (workdir.empty() ? "/" : workdir) + "/" + destination;
        }
        m_destination = clean_path(destination);
        if (!m_dest_is_dir && m_state.rootfs.open(m_destination, O_PATH | O_DIRECTORY)) m_dest_is_dir = true;
        return {};
    }

    Status plan_sources() {
        for (const std::string& raw : m_request.sources) {
            KILN_ASSIGN(std::string source, m_state.expand(raw, m_at));
            AddSourceKind kind = classify_add_source(source);
            if (kind == AddSourceKind::git)
                return fail(error(is_add() ? "ADD of a git repository is not supported: " + source
                                           : "source can't be a git ref for COPY: " + source));
            if (!m_checksum.empty() && kind != AddSourceKind::http)
                return fail(error("--checksum requires an http(s) source: " + source));
            if (kind == AddSourceKind::http) {
                if (!is_add()) return fail(error("source can't be a URL for COPY: " + source));
                m_sources.push_back(PlannedSource{.path = source, .is_url = true});
                continue;
            }
            if (m_request.from.empty() && escapes_root(source))
                return fail(error("forbidden path outside the build context: " + source));
            KILN_TRY(m_request.parents ? plan_with_parents(source) : plan_local(source));
        }
        return {};
    }

    // Wildcard matches that an --exclude pattern names (relative to the pattern's fixed part) are dropped.
    Status plan_local(const std::string& pattern) {
        KILN_ASSIGN(auto matched, with_context(expand_sources(*m_from, pattern, m_options.ignore), where()));
        std::string base = wildcard_base(pattern);
        bool wildcard = has_wildcards(pattern);
        for (std::string& path : matched) {
            if (wildcard && m_exclude && m_exclude->matches(relative_to(path, base))) continue;
            m_sources.push_back(PlannedSource{.path = std::move(path)});
        }
        return {};
    }

    // BuildKit's --parents: "a/b/c.txt" keeps "a/b/" below the destination; "a/./b/c.txt" only "b/", the part
    // after the "/./" pivot. Excludes are relative to the pivot.
    Status plan_with_parents(const std::string& source) {
        size_t cut = source.find("/./");
        std::string pivot_pattern = cut == std::string::npos ? "" : source.substr(0, cut);
        std::string pattern = clean_path(cut == std::string::npos ? source : source.substr(cut + 3));
        std::vector<std::string> pivots = {clean_path(pivot_pattern)};
        if (has_wildcards(pivot_pattern)) {
            KILN_ASSIGN(pivots,
                        with_context(expand_sources(*m_from, pivot_pattern, m_options.ignore), where()));
        }
        for (const std::string& pivot : pivots) {
            KILN_ASSIGN(
                auto matched,
                with_context(expand_sources(*m_from, join_path(pivot, pattern), m_options.ignore), where()));
            for (std::string& path : matched) {
                std::string relative = relative_to(path, pivot);
                if (m_exclude && !relative.empty() && m_exclude->matches(relative)) continue;
                m_sources.push_back(PlannedSource{.path = std::move(path), .pivot = pivot});
            }
        }
        return {};
    }

    Status copy_local(const PlannedSource& source) {
        if (source.pivot)
            return with_context(
                copy_path_with_parents(*m_from, *source.pivot, relative_to(source.path, *source.pivot),
                                       m_state.rootfs, m_destination, m_options, m_written),
                where());
        if (is_add()) {
            KILN_ASSIGN(bool archive, with_context(is_tar_archive(*m_from, source.path), where()));
            if (archive) return unpack(source.path);
        }
        KILN_ASSIGN(UniqueFd probe, with_context(m_from->open(source.path, O_PATH), where()));
        struct stat st;
        if (::fstat(probe.get(), &st) != 0)
            return fail_errno(str_cat(where(), ": stat ", m_from->display(source.path)));
        std::string target = S_ISDIR(st.st_mode) || !m_dest_is_dir
                                 ? m_destination
                                 : join_path(m_destination, basename_of(source.path));
        return with_context(copy_path(*m_from, source.path, m_state.rootfs, target, m_options, m_written),
                            where());
    }

    // A local archive is unpacked into the destination, which is then a directory whatever it ends with.
    Status unpack(const std::string& path) {
        if (m_options.mode && !m_warned_chmod) {
            log_warn(where(), ": --chmod does not apply to the files of an unpacked archive (as in Docker)");
            m_warned_chmod = true;
        }
        log_info("  unpacking ", path, " into /", m_destination);
        ArchiveUnpack unpack{.owner = m_chown, .ownership_failure = ownership_failure_policy()};
        return with_context(unpack_archive(*m_from, path, m_state.rootfs, m_destination, unpack, m_written),
                            where());
    }

    // Downloads into the work directory (verified before anything reaches the rootfs), then copies the file
    // in with BuildKit's metadata: mode 0600 unless --chmod, the Last-Modified time (else the epoch), root or
    // --chown.
    Status copy_url(const std::string& url) {
        if (!m_http) m_http.emplace(HttpClientOptions{});
        KILN_ASSIGN(TempDir scratch, TempDir::create(m_state.session.work_dir, "add-url-"));
        std::string file = scratch.path() + "/download";
        KILN_ASSIGN(Download download, with_context(download_url(*m_http, url, file), where()));
        if (!m_checksum.empty() && download.digest != m_checksum)
            return fail(error(str_cat("checksum mismatch for ", url, ": expected ", m_checksum, ", got ",
                                      download.digest)));
        log_info("  downloaded ", url_file_name(url), ": ", format_bytes(download.size), " ",
                 download.digest);
        timespec times[2] = {{download.last_modified.value_or(0), 0},
                             {download.last_modified.value_or(0), 0}};
        if (::utimensat(AT_FDCWD, file.c_str(), times, 0) != 0)
            return fail_errno(str_cat("set times of ", file));
        KILN_ASSIGN(RootFs scratch_root, RootFs::open(scratch.path()));
        std::string target = m_dest_is_dir ? join_path(m_destination, url_file_name(url)) : m_destination;
        CopyOptions options{.owner = m_options.owner, .mode = m_options.mode};
        return with_context(copy_path(scratch_root, "download", m_state.rootfs, target, options, m_written),
                            where());
    }

    Status copy_inline(const dockerfile::HeredocFile& file) {
        std::string content = file.content;
        if (file.expand) {
            // As BuildKit expands heredoc bodies: quotes are text, and the escape is always '\', whatever the
            // Dockerfile's escape directive says.
            dockerfile::ShellExpander literal('\\', {.quotes_are_literal = true});
            KILN_ASSIGN(content, with_context(literal.process_word(content, m_state.lookup()), where()));
        }
        std::string target = m_dest_is_dir ? join_path(m_destination, file.name) : m_destination;
        return with_context(write_inline_file(m_state.rootfs, target, content, m_options, m_written),
                            where());
    }

    StageState& m_state;
    const dockerfile::InstructionBase& m_at;
    const CopyRequest& m_request;
    CopyOptions m_options;
    std::optional<CopyOwner> m_chown;  // --chown alone: archives keep their owners without it
    std::optional<dockerfile::IgnoreMatcher> m_exclude;
    std::string m_checksum;
    std::optional<RootFs> m_source_root;  // COPY --from
    const RootFs* m_from = nullptr;
    std::string m_destination;  // cleaned, relative to the rootfs
    bool m_dest_is_dir = false;
    std::vector<PlannedSource> m_sources;
    std::optional<HttpClient> m_http;
    std::vector<std::string> m_written;
    bool m_warned_chmod = false;
};

}  // namespace

Status copy_into_stage(StageState& state, const dockerfile::InstructionBase& at, const CopyRequest& request) {
    CopyOperation operation(state, at, request);
    return operation.run();
}

Status execute_copy(StageState& state, const dockerfile::CopyInstruction& instruction) {
    return copy_into_stage(state, instruction,
                           CopyRequest{.sources = instruction.sources,
                                       .inline_sources = instruction.inline_sources,
                                       .destination = instruction.destination,
                                       .from = instruction.from,
                                       .chown = instruction.chown,
                                       .chmod = instruction.chmod,
                                       .excludes = instruction.excludes,
                                       .parents = instruction.parents});
}

}  // namespace kiln
