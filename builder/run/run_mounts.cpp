#include "builder/run/run_mounts.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <map>

#include "builder/commands/commands.hpp"
#include "builder/sources/copy_files.hpp"
#include "builder/run/run_mount_spec.hpp"
#include "builder/run/secrets.hpp"
#include "builder/sources/source_filesystem.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

Result<std::string> absolute_directory(const std::string& path) {
    char resolved[PATH_MAX];
    if (!::realpath(path.c_str(), resolved)) return fail_errno(str_cat("realpath ", path));
    return std::string(resolved);
}

std::string basename_of(const std::string& path) {
    std::string cleaned = clean_path(path);
    size_t slash = cleaned.rfind('/');
    return slash == std::string::npos ? cleaned : cleaned.substr(slash + 1);
}

// One --mount being resolved, with what its errors need to say where they come from.
class MountResolver {
public:
    MountResolver(StageState& state, const dockerfile::RunInstruction& run, RunMountSet& set,
                  std::vector<CacheMountLease>& caches, std::vector<TempDir>& copies)
        : m_state(state), m_run(run), m_set(set), m_caches(caches), m_copies(copies) {}

    Status add(const std::string& raw);

private:
    Error error(const std::string& message) const {
        return instruction_error(m_state, m_run, str_cat("--mount=", m_raw, ": ", message));
    }
    Status add_bind(const RunMountRequest& request, const std::string& target);
    Status add_cache(const RunMountRequest& request, const std::string& target);
    Status add_secret(const RunMountRequest& request);
    Result<std::string> absolute_target(const std::string& target) const;
    Result<TempDir> throwaway_directory(const std::string& prefix) const;

    StageState& m_state;
    const dockerfile::RunInstruction& m_run;
    RunMountSet& m_set;
    std::vector<CacheMountLease>& m_caches;
    std::vector<TempDir>& m_copies;
    std::string m_raw;
    std::map<std::string, std::string> m_cache_directories;  // cache id → its directory, for this step
};

Result<std::string> MountResolver::absolute_target(const std::string& target) const {
    std::string path = target;
    if (path.empty() || path[0] != '/') {
        const std::string& working_dir = m_state.image.config().config.working_dir;
        path = (working_dir.empty() ? "/" : working_dir) + "/" + path;
    }
    std::string cleaned = clean_path(path);
    if (cleaned.empty()) return fail(error("invalid mount target \"/\""));
    return "/" + cleaned;
}

Result<TempDir> MountResolver::throwaway_directory(const std::string& prefix) const {
    std::string parent = m_state.session.work_dir + "/run-mounts";
    KILN_TRY(make_directories(parent, 0700));
    return TempDir::create(parent, prefix);
}

Status MountResolver::add(const std::string& raw) {
    m_raw = raw;
    auto expand = [this](std::string_view word) { return m_state.expand(word, m_run); };
    auto parsed = parse_run_mount(raw, expand);
    if (!parsed) return fail(error(parsed.error().message()));
    const RunMountRequest& request = *parsed;
    switch (request.type) {
        case RunMountType::ssh:
            return fail(error("RUN --mount=type=ssh is not supported yet"));
        case RunMountType::secret:
            return add_secret(request);
        case RunMountType::tmpfs: {
            KILN_ASSIGN(std::string target, absolute_target(request.target));
            m_set.mounts.push_back(RunMount{
                .kind = RunMountKind::tmpfs, .target = target, .tmpfs_size = request.size.value_or(0)});
            return {};
        }
        case RunMountType::cache: {
            KILN_ASSIGN(std::string target, absolute_target(request.target));
            return add_cache(request, target);
        }
        case RunMountType::bind: {
            KILN_ASSIGN(std::string target, absolute_target(request.target));
            return add_bind(request, target);
        }
    }
    return {};
}

// The layer directories of the stage whose overlay is mounted at `rootfs_path`, or none.
std::vector<std::string> stage_layer_directories(const BuildSession& session, const std::string& rootfs_path) {
    for (const auto& [index, result] : session.completed)
        if (result.overlay && result.rootfs_path == rootfs_path) return result.overlay->layer_directories();
    return {};
}

Status MountResolver::add_bind(const RunMountRequest& request, const std::string& target) {
    bool from_context = request.from.empty();
    std::string root_path = m_state.session.context.root().path();
    if (!from_context) {
        KILN_ASSIGN(root_path, source_filesystem(m_state, m_run, request.from));
    }
    KILN_ASSIGN(root_path, absolute_directory(root_path));
    KILN_ASSIGN(RootFs root, RootFs::open(root_path));
    std::string source = clean_path(request.source);
    const char* where = from_context ? "the build context" : "the --mount's from";
    auto probe = root.open(source, O_PATH);
    if (!probe) return fail(error(str_cat("source \"", request.source, "\" not found in ", where)));
    struct stat st;
    if (::fstat(probe->get(), &st) != 0) return fail_errno(str_cat("stat ", root.display(source)));
    const dockerfile::IgnoreMatcher* ignore = from_context ? m_state.session.context.ignore() : nullptr;
    if (ignore && !source.empty() && ignore->matches(source))
        return fail(
            error(str_cat("source \"", request.source, "\" is excluded by the build context's ignore file")));

    RunMount mount{.kind = RunMountKind::bind, .target = target};
    mount.access = request.read_only ? MountAccess::read_only : MountAccess::read_write;
    if (request.read_only && !ignore) {
        mount.source_root = root_path;
        mount.source = source;
        // A stage's overlay mount cannot be idmapped; the sandbox may need its layers instead.
        if (!from_context) mount.source_layers = stage_layer_directories(m_state.session, root_path);
        m_set.mounts.push_back(std::move(mount));
        return {};
    }
    // A copy: what an rw step writes is dropped with it (as BuildKit does), and a context copy leaves out
    // what the ignore rules exclude. Context files belong to root, as BuildKit's file transfer makes them.
    KILN_ASSIGN(TempDir copy, throwaway_directory("bind-"));
    KILN_ASSIGN(RootFs to, RootFs::open(copy.path()));
    CopyOptions options;
    options.ignore = ignore;
    if (from_context) options.owner = CopyOwner{0, 0};
    std::string copied = S_ISDIR(st.st_mode) ? "" : basename_of(source);
    std::vector<std::string> written;
    KILN_TRY_CONTEXT(copy_path(root, source, to, copied, options, written),
                     m_state.where(m_run) + ": copying the --mount source");
    if (S_ISDIR(st.st_mode)) {
        CopyOwner owner = options.owner.value_or(CopyOwner{st.st_uid, st.st_gid});
        if (::chown(copy.path().c_str(), owner.uid, owner.gid) != 0 ||
            ::chmod(copy.path().c_str(), st.st_mode & 07777) != 0)
            return fail_errno(str_cat("set the owner and mode of ", copy.path()));
    }
    KILN_ASSIGN(mount.source_root, absolute_directory(copy.path()));
    mount.source = copied;
    m_copies.push_back(std::move(copy));
    m_set.mounts.push_back(std::move(mount));
    return {};
}

Status MountResolver::add_cache(const RunMountRequest& request, const std::string& target) {
    CacheMountSettings settings;
    settings.id = request.id.empty() ? (request.target.empty() ? target : request.target) : request.id;
    settings.sharing = request.sharing.value_or(CacheSharing::shared);
    settings.mode = static_cast<mode_t>(request.mode.value_or(0755) & 07777);
    settings.uid = request.uid.value_or(0);
    settings.gid = request.gid.value_or(0);
    if (!request.from.empty()) {
        KILN_ASSIGN(settings.seed_root, source_filesystem(m_state, m_run, request.from));
        settings.seed_path = clean_path(request.source);
    } else if (!clean_path(request.source).empty()) {
        return fail(error("source without from on a cache mount is not supported yet"));
    }
    RunMount mount{.kind = RunMountKind::bind,
                   .target = target,
                   .access = request.read_only ? MountAccess::read_only : MountAccess::read_write};
    // A second mount of the same cache in this step shares the first one's lease: locking it again would wait
    // for this very step.
    if (auto held = m_cache_directories.find(settings.id); held != m_cache_directories.end()) {
        mount.source_root = held->second;
        m_set.mounts.push_back(std::move(mount));
        return {};
    }
    const std::string& configured = m_state.session.options.cache_dir;
    std::string cache_root = configured.empty() ? default_cache_directory() : configured;
    auto lease = acquire_cache_mount(cache_root, settings);
    if (!lease) return fail(error(lease.error().message()));
    KILN_ASSIGN(mount.source_root, absolute_directory(lease->directory()));
    m_cache_directories.emplace(settings.id, mount.source_root);
    m_set.mounts.push_back(std::move(mount));
    m_caches.push_back(std::move(*lease));
    return {};
}

Status MountResolver::add_secret(const RunMountRequest& request) {
    std::string id = !request.source.empty() ? request.source
                     : !request.id.empty()   ? request.id
                                             : basename_of(request.target);
    std::optional<SecretSource> source = find_secret(m_state.session.options.secrets, id);
    if (!source) {
        if (request.required)
            return fail(error(str_cat(
                "secret ", id, " is required, but no --secret gives it (--secret id=", id, ",src=PATH)")));
        log_info("  secret ", id, " is not provided: not mounted");
        return {};
    }
    auto value = read_secret(*source);
    if (!value) return fail(error(value.error().message()));
    std::string target = request.target;
    if (target.empty() && !request.env) target = "/run/secrets/" + basename_of(id);
    if (!target.empty()) {
        RunMount file{.kind = RunMountKind::file};
        KILN_ASSIGN(file.target, absolute_target(target));
        file.content = *value;
        file.mode = static_cast<mode_t>(request.mode.value_or(0400) & 07777);
        file.uid = request.uid.value_or(0);
        file.gid = request.gid.value_or(0);
        m_set.mounts.push_back(std::move(file));
    }
    if (request.env)
        m_set.environment.push_back(str_cat(request.env->empty() ? id : *request.env, "=", *value));
    return {};
}

}  // namespace

Result<RunMountSet> prepare_run_mounts(StageState& state, const dockerfile::RunInstruction& run) {
    RunMountSet set;
    MountResolver resolver(state, run, set, set.m_caches, set.m_copies);
    for (const std::string& raw : run.mounts) KILN_TRY(resolver.add(raw));
    return set;
}

}  // namespace kiln
