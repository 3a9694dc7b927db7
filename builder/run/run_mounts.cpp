#include "builder/run/run_mounts.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <map>

#include "builder/sources/copy_files.hpp"
#include "builder/run/run_mount_spec.hpp"
#include "builder/run/secrets.hpp"
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

std::string basename_of(const std::string& path) { return file_name(clean_path(path)); }

}  // namespace

// One step's mounts being resolved, with what their errors need to say where they come from.
class MountResolver {
public:
    MountResolver(const RunMountInputs& inputs, RunMountSet& set) : m_in(inputs), m_set(set) {}

    Status add(const PlannedMount& mount);

private:
    Error error(const std::string& message) const {
        return Error(str_cat("--mount=", m_mount->text, ": ", message)).at(m_in.at);
    }
    Status add_bind(const PlannedMount& mount);
    Status add_cache(const PlannedMount& mount);
    Status add_secret(const PlannedMount& mount);
    Result<TempDir> throwaway_directory(const std::string& prefix) const;

    const RunMountInputs& m_in;
    RunMountSet& m_set;
    const PlannedMount* m_mount = nullptr;
    std::map<std::string, std::string> m_cache_directories;  // cache id → its directory, for this step
};

Result<TempDir> MountResolver::throwaway_directory(const std::string& prefix) const {
    std::string parent = m_in.work_dir + "/run-mounts";
    KILN_TRY(make_directories(parent, 0700));
    return TempDir::create(parent, prefix);
}

Status MountResolver::add(const PlannedMount& mount) {
    m_mount = &mount;
    switch (mount.request.type) {
        case RunMountType::ssh:
            return fail(error("RUN --mount=type=ssh is not supported yet"));
        case RunMountType::secret:
            return add_secret(mount);
        case RunMountType::tmpfs:
            m_set.mounts.push_back(RunMount{
                .kind = RunMountKind::tmpfs, .target = mount.target, .tmpfs_size = mount.request.size.value_or(0)});
            return {};
        case RunMountType::cache:
            return add_cache(mount);
        case RunMountType::bind:
            return add_bind(mount);
    }
    return {};
}

Status MountResolver::add_bind(const PlannedMount& planned) {
    const RunMountRequest& request = planned.request;
    KILN_ASSIGN(SourceDirectory from, with_location(m_in.source_directory(planned.from), m_in.at));
    KILN_ASSIGN(std::string root_path, absolute_directory(from.path));
    KILN_ASSIGN(RootFs root, RootFs::open(root_path));
    std::string source = clean_path(request.source);
    const char* where = from.is_context ? "the build context" : "the --mount's from";
    auto probe = root.open(source, O_PATH);
    if (!probe) return fail(error(str_cat("source \"", request.source, "\" not found in ", where)));
    struct stat st;
    if (::fstat(probe->get(), &st) != 0) return fail_errno(str_cat("stat ", root.display(source)));
    const dockerfile::IgnoreMatcher* ignore = from.ignore;
    if (ignore && !source.empty() && ignore->matches(source))
        return fail(
            error(str_cat("source \"", request.source, "\" is excluded by the build context's ignore file")));

    RunMount mount{.kind = RunMountKind::bind, .target = planned.target};
    mount.access = request.read_only ? MountAccess::read_only : MountAccess::read_write;
    if (request.read_only && !ignore) {
        mount.source_root = root_path;
        mount.source = source;
        // A stage's overlay mount cannot be idmapped; the sandbox may need its layers instead.
        mount.source_layers = from.layers;
        m_set.mounts.push_back(std::move(mount));
        return {};
    }
    // A copy: what an rw step writes is dropped with it (as BuildKit does), and a context copy leaves out
    // what the ignore rules exclude. Context files belong to root, as BuildKit's file transfer makes them.
    KILN_ASSIGN(TempDir copy, throwaway_directory("bind-"));
    KILN_ASSIGN(RootFs to, RootFs::open(copy.path()));
    CopyOptions options;
    options.ignore = ignore;
    if (from.is_context) options.owner = CopyOwner{0, 0};
    std::string copied = S_ISDIR(st.st_mode) ? "" : basename_of(source);
    std::vector<std::string> written;
    KILN_TRY(with_location(with_context(copy_path(root, source, to, copied, options, written), "copying the --mount source"),
                           m_in.at));
    if (S_ISDIR(st.st_mode)) {
        CopyOwner owner = options.owner.value_or(CopyOwner{st.st_uid, st.st_gid});
        if (::chown(copy.path().c_str(), owner.uid, owner.gid) != 0 ||
            ::chmod(copy.path().c_str(), st.st_mode & 07777) != 0)
            return fail_errno(str_cat("set the owner and mode of ", copy.path()));
    }
    KILN_ASSIGN(mount.source_root, absolute_directory(copy.path()));
    mount.source = copied;
    m_set.m_copies.push_back(std::move(copy));
    m_set.mounts.push_back(std::move(mount));
    return {};
}

Status MountResolver::add_cache(const PlannedMount& planned) {
    const RunMountRequest& request = planned.request;
    CacheMountSettings settings;
    settings.id = request.id.empty() ? (request.target.empty() ? planned.target : request.target) : request.id;
    settings.sharing = request.sharing.value_or(CacheSharing::shared);
    settings.mode = static_cast<mode_t>(request.mode.value_or(0755) & 07777);
    settings.uid = request.uid.value_or(0);
    settings.gid = request.gid.value_or(0);
    if (!request.from.empty()) {
        KILN_ASSIGN(SourceDirectory from, with_location(m_in.source_directory(planned.from), m_in.at));
        settings.seed_root = from.path;
        settings.seed_path = clean_path(request.source);
    }
    RunMount mount{.kind = RunMountKind::bind,
                   .target = planned.target,
                   .access = request.read_only ? MountAccess::read_only : MountAccess::read_write};
    // A second mount of the same cache in this step shares the first one's lease: locking it again would wait
    // for this very step.
    if (auto held = m_cache_directories.find(settings.id); held != m_cache_directories.end()) {
        mount.source_root = held->second;
        m_set.mounts.push_back(std::move(mount));
        return {};
    }
    auto lease = acquire_cache_mount(m_in.cache_root, settings);
    if (!lease) return fail(error(lease.error().message()));
    KILN_ASSIGN(mount.source_root, absolute_directory(lease->directory()));
    m_cache_directories.emplace(settings.id, mount.source_root);
    m_set.mounts.push_back(std::move(mount));
    m_set.m_caches.push_back(std::move(*lease));
    return {};
}

Status MountResolver::add_secret(const PlannedMount& planned) {
    const RunMountRequest& request = planned.request;
    const std::string& id = request.id;  // the planner chose it: source=, else id=, else the target's name
    std::optional<SecretSource> source = find_secret(*m_in.secrets, id);
    if (!source) {
        if (request.required)
            return fail(error(str_cat(
                "secret ", id, " is required, but no --secret gives it (--secret id=", id, ",src=PATH)")));
        log_info("  secret ", id, " is not provided: not mounted");
        return {};
    }
    auto value = read_secret(*source, m_in.environment);
    if (!value) return fail(error(value.error().message()));
    if (!planned.target.empty()) {
        RunMount file{.kind = RunMountKind::file};
        file.target = planned.target;
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

Result<RunMountSet> prepare_run_mounts(const RunMountInputs& inputs, const std::vector<PlannedMount>& mounts) {
    RunMountSet set;
    MountResolver resolver(inputs, set);
    for (const PlannedMount& mount : mounts) KILN_TRY(resolver.add(mount));
    return set;
}

}  // namespace kiln
