#include "builder/sandbox/sandbox.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "builder/sandbox/cloned_process.hpp"
#include "builder/sandbox/container_init.hpp"
#include "builder/sandbox/mount_stubs.hpp"
#include "builder/sandbox/ownership_filter.hpp"
#include "builder/sandbox/ownership_supervisor.hpp"
#include "builder/sandbox/slirp_network.hpp"
#include "builder/sandbox/step_channels.hpp"
#include "builder/sandbox/step_mounts.hpp"
#include "builder/sandbox/userns_overlay.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

IdMapping single_extent_mapping(std::uint32_t uid_start, std::uint32_t gid_start) {
    return {{{0, uid_start, k_container_id_count}}, {{0, gid_start, k_container_id_count}}, SetGroups::leave};
}

}  // namespace

Result<HostRange> root_host_range(const std::string& file) {
    KILN_ASSIGN(auto range, find_subordinate_range(file, "root", 0));
    if (range && range->count >= k_container_id_count)
        return HostRange{range->start, str_cat("root's entry in ", file)};
    return HostRange{
        k_default_host_id_base,
        str_cat("kiln's default range: ", file, " has no \"root\" entry of ", k_container_id_count, " ids")};
}

Result<UniqueFd> clone_inside(int detached_mount, const std::string& staging_parent, const std::string& source) {
    // A path inside a detached mount cannot be cloned: attach it in kiln's private namespace for a moment.
    // The directory outlives the guard, which detaches the mount on every path out of here.
    KILN_ASSIGN(TempDir staging, TempDir::create(staging_parent, "layered-source-"));
    KILN_ASSIGN(MountGuard attached, with_context(attach_mount(detached_mount, staging.path()),
                                                  "attaching a read-only overlay of a stage's layers"));
    KILN_ASSIGN(RootFs root, RootFs::open(staging.path()));
    KILN_ASSIGN(UniqueFd opened, root.open(source, O_PATH));
    UniqueFd clone(
        ::open_tree(opened.get(), "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (!clone) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", root.display(source)));
    return clone;
}

namespace {

// A detached recursive copy of the rootfs mount, idmapped through `userns_fd` unless it is -1.
Result<UniqueFd> clone_rootfs_tree(const std::string& path, int userns_fd) {
    UniqueFd tree(::open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (!tree) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", path));
    if (userns_fd >= 0) {
        mount_attr attr{};
        attr.attr_set = MOUNT_ATTR_IDMAP;
        attr.userns_fd = static_cast<std::uint64_t>(userns_fd);
        if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
            return fail_errno(str_cat("mount_setattr(MOUNT_ATTR_IDMAP) ", path));
    }
    return tree;
}

std::string host_range_text(const IdExtent& extent) {
    return str_cat(extent.outside, "-", std::uint64_t(extent.outside) + extent.count - 1);
}

}  // namespace

Result<Sandbox> Sandbox::detect_userns(const SandboxOptions& options) {
    KILN_ASSIGN(IdMap own_uids, read_own_id_map("uid_map"));
    KILN_ASSIGN(IdMap own_gids, read_own_id_map("gid_map"));
    Sandbox sandbox;
    if (::geteuid() == 0 && is_initial_id_map(own_uids)) {
        KILN_ASSIGN(HostRange uids, root_host_range(options.subuid_file));
        KILN_ASSIGN(HostRange gids, root_host_range(options.subgid_file));
        sandbox.m_identity_mapping = single_extent_mapping(0, 0);
        sandbox.m_mapping = sandbox.m_identity_mapping;
        std::string identity =
            "userns sandbox as root: RUN ids 0-65535 are the same ids on the host (identity map)";
        std::string probe_directory =
            options.probe_directory.empty() ? default_temp_parent() : options.probe_directory;
        if (auto clone = clone_rootfs_tree(probe_directory, -1); !clone) {
            // Root without CAP_SYS_ADMIN (a container's): each sandbox clones its rootfs inside its own
            // namespace.
            KILN_TRY(create_user_namespace(sandbox.m_identity_mapping));
            log_warn("kiln cannot clone mounts (", clone.error().message(),
                     "): RUN steps get the identity map, so their root is host root on the rootfs");
            sandbox.m_description = str_cat(identity, "; kiln may not clone mounts here");
            return sandbox;
        }
        sandbox.m_parent_clones_rootfs = true;
        if (options.idmapped_mounts == IdmappedMounts::disabled) {
            KILN_TRY(create_user_namespace(sandbox.m_identity_mapping));
            sandbox.m_description = str_cat(identity, "; idmapped mounts disabled");
            return sandbox;
        }
        IdMapping mapping = single_extent_mapping(uids.start, gids.start);
        KILN_ASSIGN(UniqueFd userns, create_user_namespace(mapping));
        if (auto probe = clone_rootfs_tree(probe_directory, userns.get()); !probe) {
            log_warn("idmapped mounts do not work here (", probe.error().message(),
                     "): RUN steps get the identity map, so their root is host root on the rootfs");
            sandbox.m_description = str_cat(identity, " (no idmapped mounts on ", probe_directory, ")");
            return sandbox;
        }
        sandbox.m_mapping = mapping;
        sandbox.m_rootfs_mount = RootfsMount::idmapped;
        sandbox.m_idmap_userns = std::move(userns);
        sandbox.m_description = str_cat(
            "userns sandbox as root: RUN ids 0-65535 run as host uids ", host_range_text(mapping.uids[0]),
            " (", uids.source, ") and gids ", host_range_text(mapping.gids[0]), " (", gids.source,
            "); the rootfs is an idmapped mount, so files keep their image ids on disk");
        return sandbox;
    }
    if (::geteuid() == 0) {
        // Already root in a user namespace (kiln's own, or a pod's): nest one that changes no id.
        sandbox.m_mapping = {identity_of(own_uids), identity_of(own_gids), SetGroups::leave};
        sandbox.m_identity_mapping = sandbox.m_mapping;
        KILN_TRY(create_user_namespace(sandbox.m_mapping));
        std::string single;
        if (id_count(own_uids) == 1) {
            Status supervised = probe_ownership_filter();
            sandbox.m_pretend_ownership = supervised.has_value();
            single = supervised ? "; a single id: a seccomp supervisor pretends chown and user switches and "
                                  "records the owners they give files, which the layers carry"
                                : str_cat("; a single id: ownership collapses to 0, chown to other ids and switching "
                                          "users fail (", supervised.error().message(), ")");
        }
        sandbox.m_description = str_cat("userns sandbox nested in kiln's user namespace: RUN uids ",
                                        describe_inside_ids(own_uids), ", gids ", describe_inside_ids(own_gids),
                                        " (identity map)", single);
        return sandbox;
    }
    return fail(str_cat("kiln runs as uid ", ::geteuid(), " outside a user namespace of its own: ",
                        options.build_user_namespace_error.empty() ? "enter_build_user_namespace() must run first"
                                                                   : options.build_user_namespace_error));
}

Result<IdMapping> Sandbox::mapping_for_run(const RunSpec& spec, UniqueFd& rootfs_tree,
                                           StepMounts& step_mounts) const {
    if (!m_parent_clones_rootfs) return m_mapping;
    if (m_rootfs_mount == RootfsMount::idmapped && spec.overlay) {
        // An overlay mount cannot be idmapped: the sandbox's own overlay is made of idmapped layers. The
        // overlay snapshotter was chosen because this works (probe_overlay_rootfs), so it is not weakened
        // into the identity map here.
        KILN_ASSIGN(rootfs_tree, idmapped_overlay(*spec.overlay));
        auto layered = [this](const std::vector<std::string>& layers, const std::string& source) {
            return clone_from_layers(layers, source);
        };
        KILN_TRY(step_mounts.clone_sources(m_idmap_userns.get(), layered));
        return m_mapping;
    }
    if (m_rootfs_mount == RootfsMount::idmapped) {
        // The rootfs and every bind source share one mapping: all idmapped, or all under the identity map.
        auto idmapped = clone_rootfs_tree(spec.rootfs, m_idmap_userns.get());
        Status sources = idmapped ? step_mounts.clone_sources(m_idmap_userns.get()) : Status{};
        if (idmapped && sources) {
            rootfs_tree = std::move(*idmapped);
            return m_mapping;
        }
        step_mounts.release_clones();
        log_warn("this RUN gets the identity map instead of idmapped mounts: ",
                 idmapped ? sources.error().message() : idmapped.error().message());
    }
    KILN_ASSIGN(rootfs_tree, clone_rootfs_tree(spec.rootfs, -1));
    KILN_TRY(step_mounts.clone_sources(-1));
    return m_identity_mapping;
}

Result<UniqueFd> Sandbox::idmapped_overlay(const OverlayMountSpec& spec) const {
    // The idmapped clones are attached in kiln's private mount namespace, where the child that creates the
    // overlay (in a mount namespace copied from this one) can name them: overlay refuses layers that are not
    // in its creator's mount namespace. They are detached again once the overlay holds its own clones.
    std::string staging_parent = parent_path(spec.upper.empty() ? spec.lowers[0] : parent_path(spec.upper));
    // Declared before the guards: the mounts are detached before the directory holding them is removed.
    KILN_ASSIGN(TempDir staging, TempDir::create(staging_parent, "idmapped-layers-"));
    std::vector<MountGuard> attached;
    // The child resolves the names relative to the staging directory.
    auto attach = [&](const std::string& source, const std::string& name) -> Status {
        std::string target = str_cat(staging.path(), "/", name);
        KILN_TRY(make_directories(target, 0700));
        KILN_ASSIGN(UniqueFd tree, clone_rootfs_tree(source, m_idmap_userns.get()));
        KILN_ASSIGN(MountGuard guard, with_context(attach_mount(tree.get(), target),
                                                   str_cat("attaching the idmapped clone of ", source)));
        attached.push_back(std::move(guard));
        return {};
    };
    auto mount = [&]() -> Result<UniqueFd> {
        OverlayMountSpec mapped;
        for (size_t i = 0; i < spec.lowers.size(); ++i) {
            KILN_TRY(attach(spec.lowers[i], str_cat("l", i)));
            mapped.lowers.push_back(str_cat("l", i));
        }
        if (!spec.upper.empty()) {
            // The upper and the work directory share one directory, attached as a whole.
            std::string step_dir = parent_path(spec.upper);
            if (parent_path(spec.work) != step_dir)
                return fail(str_cat("the overlay's upper ", spec.upper, " and work directory ", spec.work,
                                    " do not share a directory"));
            KILN_TRY(attach(step_dir, "step"));
            mapped.upper = str_cat("step/", spec.upper.substr(step_dir.size() + 1));
            mapped.work = str_cat("step/", spec.work.substr(step_dir.size() + 1));
        }
        // The RUN's ids search the staging directory (kiln's own are 0700), and only that.
        UniqueFd staging_fd(::open(staging.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!staging_fd || ::chmod(staging.path().c_str(), 0711) != 0)
            return fail_errno(str_cat("open ", staging.path()));
        return make_overlay_mount_in_userns(mapped, m_idmap_userns.get(), staging_fd.get());
    }();
    // The overlay holds clones of its own: the staged ones are detached on every path, last first.
    while (!attached.empty()) attached.pop_back();
    return with_context(std::move(mount), "mounting the RUN's overlay from idmapped layer directories");
}

Result<UniqueFd> Sandbox::clone_from_layers(const std::vector<std::string>& layers,
                                            const std::string& source) const {
    KILN_ASSIGN(UniqueFd overlay, idmapped_overlay(OverlayMountSpec{.lowers = layers, .upper = {}, .work = {}}));
    return clone_inside(overlay.get(), parent_path(layers[0]), source);
}

Status Sandbox::probe_overlay_rootfs(const std::string& store_dir) const {
    // Only an idmapped rootfs needs more than a clone of kiln's own overlay mount.
    if (!m_parent_clones_rootfs || m_rootfs_mount != RootfsMount::idmapped) return {};
    KILN_ASSIGN(TempDir scratch, TempDir::create(store_dir, "overlay-idmap-probe-"));
    OverlayMountSpec spec{.lowers = {scratch.path() + "/lower"},
                          .upper = scratch.path() + "/step/upper",
                          .work = scratch.path() + "/step/work"};
    KILN_TRY(make_directories(spec.lowers[0], 0755));
    KILN_TRY(make_directories(spec.upper, 0755));
    KILN_TRY(make_directories(spec.work, 0700));
    KILN_TRY(write_file_atomic(spec.lowers[0] + "/seen", "x"));
    Status probed;
    {
        auto mount = idmapped_overlay(spec);
        if (!mount) {
            probed = fail(std::move(mount).error());
        } else if (::faccessat(mount->get(), "seen", F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
            probed = fail_errno("the idmapped overlay does not show its lower layer");
        }
    }
    // Overlay leaves its work directory's "work" at mode 000: the scratch's removal must get through.
    std::string run_work = spec.work + "/work";
    if (path_exists(run_work)) ::chmod(run_work.c_str(), 0700);
    return probed;
}

Result<int> Sandbox::run(const RunSpec& spec) const {
    if (spec.argv.empty() || spec.argv[0].empty()) return fail("RUN: empty command");
    if (spec.rootfs.empty() || spec.rootfs[0] != '/')
        return fail(str_cat("RUN: rootfs \"", spec.rootfs, "\" is not absolute"));
    for (int fd : {spec.stdout_fd, spec.stderr_fd})
        if (::fcntl(fd, F_GETFD) < 0) return fail_errno(str_cat("RUN: output descriptor ", fd));
    if (m_mode == SandboxMode::chroot) return run_chroot(spec);
    KILN_ASSIGN(RootFs rootfs, RootFs::open(spec.rootfs));

    std::array<bool, k_mount_target_paths.size()> mount_wanted{};
    MountStubs stubs;
    for (MountTarget target : {MountTarget::proc, MountTarget::dev, MountTarget::sys, MountTarget::hosts,
                               MountTarget::resolv_conf}) {
        size_t index = static_cast<size_t>(target);
        const char* path = k_mount_target_paths[index];
        bool required = target == MountTarget::proc || target == MountTarget::dev;
        bool host_file = target == MountTarget::hosts || target == MountTarget::resolv_conf;
        if (host_file && !path_exists(str_cat("/", path))) {
            log_info("not mounting /", path, " into the RUN: the host has none");
            continue;
        }
        Status made = stubs.ensure(rootfs, path, host_file ? StubKind::file : StubKind::directory);
        if (!made && required)
            return fail(std::move(made).error().context(str_cat("creating the mount point /", path)));
        if (!made) {
            log_warn("not mounting /", path, " into the RUN: ", made.error().message());
            continue;
        }
        mount_wanted[index] = true;
    }

    KILN_ASSIGN(StepMounts step_mounts, StepMounts::prepare(spec.mounts, rootfs, stubs));

    // On a private network the step cannot reach a resolver on the host's loopback: it gets slirp4netns's
    // forwarder in a resolv.conf of its own, bound read-only as the host's would be.
    std::optional<TempDir> resolv_dir;
    UniqueFd resolv_tree;
    if (spec.network == NetworkMode::isolated && mount_wanted[static_cast<size_t>(MountTarget::resolv_conf)]) {
        if (auto replaced = private_network_resolv_conf(read_file("/etc/resolv.conf", 1 << 20).value_or(""))) {
            KILN_ASSIGN(resolv_dir, TempDir::create(parent_path(spec.rootfs), "run-resolv-"));
            std::string file = resolv_dir->path() + "/resolv.conf";
            KILN_TRY(write_file_atomic(file, *replaced, 0644));
            resolv_tree.reset(static_cast<int>(::open_tree(AT_FDCWD, file.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
            if (!resolv_tree) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", file));
            mount_attr attr{};
            attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            if (::mount_setattr(resolv_tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
                return fail_errno(str_cat("mount_setattr(MOUNT_ATTR_RDONLY) ", file));
        }
    }

    UniqueFd rootfs_tree;
    KILN_ASSIGN(IdMapping mapping, mapping_for_run(spec, rootfs_tree, step_mounts));
    // Declared before the child: on every path the child (and its pid namespace) is gone before a relay waits.
    KILN_ASSIGN(StepChannels channels, StepChannels::open(spec));
    InitPlan plan = channels.plan(spec);
    plan.mount_wanted = mount_wanted;
    plan.rootfs_tree_fd = rootfs_tree ? rootfs_tree.get() : -1;
    plan.private_network = spec.network != NetworkMode::host;
    plan.resolv_conf_tree_fd = resolv_tree ? resolv_tree.get() : -1;
    plan.step_mounts = step_mounts.plan();
    plan.step_mount_count = step_mounts.size();
    // Without a user namespace the step's root is host root: it keeps only Docker's default capabilities.
    bool own_user_namespace = m_mode == SandboxMode::userns;
    plan.capabilities = own_user_namespace ? CapabilitySet::all_but_sys_admin : CapabilitySet::docker_default;

    // In a single-id namespace: the thread that pretends the step's ownership calls, and the end of its socket
    // the step sends the filter's listener on, which kiln holds only until the sandbox has its copy. Declared
    // before the child, so that the supervisor stops only once the child is gone.
    std::unique_ptr<OwnershipSupervisor> supervisor;
    UniqueFd supervised_end;
    if (m_pretend_ownership) {
        int ends[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
            return fail_errno("socketpair for the RUN's ownership supervisor");
        supervised_end.reset(ends[1]);
        KILN_ASSIGN(supervisor, OwnershipSupervisor::start(UniqueFd(ends[0])));
        plan.ownership_socket = supervised_end.get();
    }

    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    if (own_user_namespace) flags |= CLONE_NEWUSER;
    if (spec.network != NetworkMode::host) flags |= CLONE_NEWNET;
    auto child = ClonedProcess::spawn(flags, container_init_main, &plan);
    if (!child && own_user_namespace)
        return fail(user_namespace_error(child.error().errno_value()).context("starting the RUN sandbox"));
    if (!child) return fail(std::move(child).error().context("starting the RUN sandbox (clone of new namespaces)"));
    channels.child_started();
    supervised_end.reset();
    rootfs_tree.reset();
    resolv_tree.reset();
    step_mounts.release_clones();

    if (own_user_namespace) KILN_TRY_CONTEXT(write_id_maps(child->pid(), mapping), "mapping the RUN's ids");
    // Before the init may run anything: once it has, it is no longer dumpable, and slirp4netns could not join it.
    std::optional<SlirpNetwork> network;
    if (spec.network == NetworkMode::isolated) {
        KILN_ASSIGN(SlirpNetwork started, SlirpNetwork::start(child->pid()));
        network.emplace(std::move(started));
    }
    KILN_TRY(channels.go());
    KILN_ASSIGN(std::vector<InitReport> reports, channels.read_reports());
    KILN_ASSIGN(int status, child->wait());
    // The pid namespace died with its init: every copy of the output pipes is closed, and what the step
    // wrote reaches kiln's log before the step's result does.
    channels.finish_output();
    KILN_TRY_CONTEXT(stubs.remove(), "removing the RUN's mount point stubs");
    return command_result(reports, status, plan);
}

}  // namespace kiln
