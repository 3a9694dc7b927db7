#include "builder/sandbox/container_init.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "layers/rootfs.hpp"

// The container's mount tree, built in the sandbox child: async-signal-safe, like all of container_init.

namespace kiln {
namespace {

constexpr std::array<const char*, k_dev_nodes.size()> k_host_dev_nodes = {
    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"};
constexpr std::array<const char*, 2> k_host_files = {"/etc/hosts", "/etc/resolv.conf"};

// Confined to the rootfs like every RootFs lookup, without allocating (this process must not).
int open_in_root(int root_fd, const char* path, int flags) { return openat_in_root_raw(root_fd, path, flags, 0); }

void close_preserving_errno(int fd) {
    int saved = errno;
    ::close(fd);
    errno = saved;
}

struct FsOption {
    const char* key;
    const char* value;  // nullptr: a flag
};

// A new, detached filesystem mount (fsopen/fsconfig/fsmount); -1 with errno on failure.
template <size_t N>
int create_filesystem(const char* type, const FsOption (&options)[N], unsigned attributes) {
    int context = ::fsopen(type, FSOPEN_CLOEXEC);
    if (context < 0) return -1;
    for (const FsOption& option : options) {
        unsigned command = option.value ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG;
        if (::fsconfig(context, command, option.key, option.value, 0) < 0) {
            close_preserving_errno(context);
            return -1;
        }
    }
    int mount_fd = -1;
    if (::fsconfig(context, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
        mount_fd = ::fsmount(context, FSMOUNT_CLOEXEC, attributes);
    close_preserving_errno(context);
    return mount_fd;
}

int create_filesystem(const char* type, unsigned attributes) {
    const FsOption none[] = {{"source", type}};
    return create_filesystem(type, none, attributes);
}

// A detached copy of a host mount, with `attributes` set on it (and on its submounts when recursive).
int clone_host_tree(const char* path, int recursive, unsigned attributes) {
    int tree = ::open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | recursive);
    if (tree < 0 || attributes == 0) return tree;
    mount_attr attr{};
    attr.attr_set = attributes;
    if (::mount_setattr(tree, "", AT_EMPTY_PATH | recursive, &attr, sizeof attr) != 0) {
        close_preserving_errno(tree);
        return -1;
    }
    return tree;
}

// Attaches a detached mount onto `name` below `dir_fd`, or onto dir_fd itself when name is "".
int attach(int mount_fd, int dir_fd, const char* name) {
    unsigned flags = MOVE_MOUNT_F_EMPTY_PATH | (name[0] == '\0' ? MOVE_MOUNT_T_EMPTY_PATH : 0);
    int rc = ::move_mount(mount_fd, "", dir_fd, name, flags);
    close_preserving_errno(mount_fd);
    return rc;
}

// Opens a mount target inside the rootfs, or returns -1 after reporting why (fatal for what a RUN needs).
int open_target(const InitPlan& plan, int root_fd, MountTarget target, int flags, ReportLevel level) {
    std::size_t index = static_cast<std::size_t>(target);
    int fd = open_in_root(root_fd, k_mount_target_paths[index], O_PATH | flags);
    if (fd < 0) {
        if (level == ReportLevel::fatal) init_die(plan, InitStep::resolve_target, errno, index);
        init_report(plan, InitStep::resolve_target, level, errno, index);
    }
    return fd;
}

void mount_proc(const InitPlan& plan, int root_fd) {
    int target = open_target(plan, root_fd, MountTarget::proc, O_DIRECTORY, ReportLevel::fatal);
    int proc = create_filesystem("proc", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (proc >= 0 && attach(proc, target, "") == 0) {
        ::close(target);
        return;
    }
    // A masked /proc (inside a container) refuses a fresh procfs; the host's, bound recursively, still works.
    init_report(plan, InitStep::mount_proc, ReportLevel::warning, errno);
    int tree = clone_host_tree("/proc", AT_RECURSIVE, 0);
    if (tree < 0 || attach(tree, target, "") != 0) init_die(plan, InitStep::bind_proc, errno);
    ::close(target);
}

void populate_dev(const InitPlan& plan, int dev) {
    for (std::size_t i = 0; i < k_dev_nodes.size(); ++i) {
        int stub = ::openat(dev, k_dev_nodes[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
        if (stub >= 0) ::close(stub);
        int node = clone_host_tree(k_host_dev_nodes[i], 0, 0);
        if (stub < 0 || node < 0 || attach(node, dev, k_dev_nodes[i]) != 0)
            init_report(plan, InitStep::bind_dev_node, ReportLevel::warning, errno, i);
    }
    const FsOption devpts_options[] = {
        {"source", "devpts"}, {"newinstance", nullptr}, {"ptmxmode", "0666"}, {"mode", "0620"}, {"gid", "5"}};
    const FsOption devpts_without_gid[] = {
        {"source", "devpts"}, {"newinstance", nullptr}, {"ptmxmode", "0666"}, {"mode", "0620"}};
    ::mkdirat(dev, "pts", 0755);
    int pts = create_filesystem("devpts", devpts_options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (pts < 0 && errno == EINVAL) {
        // gid 5 (tty) is not mapped, as in a single-id namespace.
        init_report(plan, InitStep::devpts_without_gid, ReportLevel::info, EINVAL);
        pts = create_filesystem("devpts", devpts_without_gid, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    }
    if (pts < 0 || attach(pts, dev, "pts") != 0)
        init_report(plan, InitStep::mount_devpts, ReportLevel::warning, errno);

    const FsOption shm_options[] = {{"source", "shm"}, {"mode", "1777"}, {"size", "65536k"}};
    ::mkdirat(dev, "shm", 01777);
    int shm =
        create_filesystem("tmpfs", shm_options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (shm < 0 || attach(shm, dev, "shm") != 0)
        init_report(plan, InitStep::mount_shm, ReportLevel::warning, errno);

    ::mkdirat(dev, "mqueue", 0755);
    int mqueue = create_filesystem("mqueue", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (mqueue < 0 || attach(mqueue, dev, "mqueue") != 0)
        init_report(plan, InitStep::mount_mqueue, ReportLevel::warning, errno);

    const char* const links[][2] = {{"pts/ptmx", "ptmx"},
                                    {"/proc/self/fd", "fd"},
                                    {"/proc/self/fd/0", "stdin"},
                                    {"/proc/self/fd/1", "stdout"},
                                    {"/proc/self/fd/2", "stderr"}};
    for (const auto& link : links)
        if (::symlinkat(link[0], dev, link[1]) != 0)
            init_report(plan, InitStep::make_dev_link, ReportLevel::warning, errno);
}

void mount_dev(const InitPlan& plan, int root_fd) {
    int target = open_target(plan, root_fd, MountTarget::dev, O_DIRECTORY, ReportLevel::fatal);
    const FsOption options[] = {{"source", "tmpfs"}, {"mode", "755"}, {"size", "65536k"}};
    int dev = create_filesystem("tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
    if (dev < 0) init_die(plan, InitStep::mount_dev, errno);
    // The mount fd is the tmpfs root: once attached, it is the directory to populate.
    int dev_dir = ::fcntl(dev, F_DUPFD_CLOEXEC, 3);
    if (dev_dir < 0 || attach(dev, target, "") != 0) init_die(plan, InitStep::mount_dev, errno);
    ::close(target);
    populate_dev(plan, dev_dir);
    ::close(dev_dir);
}

void bind_sys(const InitPlan& plan, int root_fd) {
    int target = open_target(plan, root_fd, MountTarget::sys, O_DIRECTORY, ReportLevel::warning);
    if (target < 0) return;
    int tree = clone_host_tree("/sys", AT_RECURSIVE,
                               MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (tree < 0 || attach(tree, target, "") != 0)
        init_report(plan, InitStep::bind_sys, ReportLevel::warning, errno);
    ::close(target);
}

void bind_host_file(const InitPlan& plan, int root_fd, MountTarget target_id, const char* source) {
    int target = open_target(plan, root_fd, target_id, 0, ReportLevel::warning);
    if (target < 0) return;
    int tree = clone_host_tree(source, 0, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (tree < 0 || attach(tree, target, "") != 0)
        init_report(plan, InitStep::bind_host_file, ReportLevel::warning, errno,
                    static_cast<std::size_t>(target_id));
    ::close(target);
}

}  // namespace

int build_container_mounts(const InitPlan& plan) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        init_die(plan, InitStep::make_mounts_private, errno);
    int root = plan.rootfs_tree_fd;
    if (root < 0) root = clone_host_tree(plan.rootfs_path, AT_RECURSIVE, 0);
    if (root < 0) init_die(plan, InitStep::clone_rootfs, errno);
    // Stacked on this namespace's "/", the rootfs needs no path lookup (the rootfs directory may not even be
    // searchable by the namespace's ids); the fd stays the rootfs mount's root once attached.
    if (::move_mount(root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) != 0)
        init_die(plan, InitStep::attach_rootfs, errno);

    // Every target is resolved inside the rootfs, so an image's symlink cannot point a mount at the host.
    mount_proc(plan, root);
    mount_dev(plan, root);
    if (plan.mount_wanted[static_cast<std::size_t>(MountTarget::sys)]) bind_sys(plan, root);
    for (MountTarget target : {MountTarget::hosts, MountTarget::resolv_conf})
        if (plan.mount_wanted[static_cast<std::size_t>(target)])
            bind_host_file(plan, root, target, k_host_files[target == MountTarget::hosts ? 0 : 1]);
    return root;
}

}  // namespace kiln
