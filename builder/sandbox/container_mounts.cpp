#include "builder/sandbox/container_init.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <string>

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
int create_filesystem(const char* type, const FsOption* options, size_t count, unsigned attributes) {
    int context = ::fsopen(type, FSOPEN_CLOEXEC);
    if (context < 0) return -1;
    for (size_t i = 0; i < count; ++i) {
        const FsOption& option = options[i];
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

template <size_t N>
int create_filesystem(const char* type, const FsOption (&options)[N], unsigned attributes) {
    return create_filesystem(type, options, N, attributes);
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

// What Docker hides from a container in /proc and /sys: files that show host-wide state (the keys of every
// user who lets them be viewed, kernel memory, timers, hardware), masked by an empty read-only mount; and
// the kernel's knobs, made read-only (root without a user namespace could otherwise write
// /proc/sysrq-trigger or /proc/sys). Paths a kernel lacks are skipped.
constexpr const char* k_masked_paths[] = {"proc/acpi",          "proc/asound",      "proc/interrupts",
                                          "proc/kcore",         "proc/keys",        "proc/latency_stats",
                                          "proc/sched_debug",   "proc/scsi",        "proc/timer_list",
                                          "proc/timer_stats",   "sys/firmware",     "sys/devices/virtual/powercap"};
constexpr const char* k_read_only_paths[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};

void mask_path(const InitPlan& plan, int root_fd, const char* path, std::size_t index) {
    int target = open_in_root(root_fd, path, O_PATH | O_NOFOLLOW);
    if (target < 0) return;
    struct stat st {};
    int cover = -1;
    if (::fstat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
        const FsOption options[] = {{"source", "tmpfs"}, {"size", "4k"}};
        cover = create_filesystem("tmpfs", options,
                                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    } else {
        cover = clone_host_tree("/dev/null", 0, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    }
    if (cover < 0 || attach(cover, target, "") != 0) init_die(plan, InitStep::mask_path, errno, index);
    ::close(target);
}

void make_read_only(const InitPlan& plan, int root_fd, const char* path, std::size_t index) {
    int target = open_in_root(root_fd, path, O_PATH | O_NOFOLLOW);
    if (target < 0) return;
    int tree = ::open_tree(target, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (tree < 0 || ::mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0 ||
        attach(tree, target, "") != 0)
        init_die(plan, InitStep::mask_path, errno, index);
    ::close(target);
}

void mask_host_state(const InitPlan& plan, int root_fd) {
    std::size_t index = 0;
    for (const char* path : k_masked_paths) mask_path(plan, root_fd, path, index++);
    for (const char* path : k_read_only_paths) make_read_only(plan, root_fd, path, index++);
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

// Returns the fd of the new /dev, which RUN mounts use as scratch space for the files they bind.
int mount_dev(const InitPlan& plan, int root_fd) {
    int target = open_target(plan, root_fd, MountTarget::dev, O_DIRECTORY, ReportLevel::fatal);
    const FsOption options[] = {{"source", "tmpfs"}, {"mode", "755"}, {"size", "65536k"}};
    // nodev: the host's nodes are bound in with their own mounts' flags; a node made here by mknod stays shut.
    int dev = create_filesystem("tmpfs", options, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME);
    if (dev < 0) init_die(plan, InitStep::mount_dev, errno);
    // The mount fd is the tmpfs root: once attached, it is the directory to populate.
    int dev_dir = ::fcntl(dev, F_DUPFD_CLOEXEC, 3);
    if (dev_dir < 0 || attach(dev, target, "") != 0) init_die(plan, InitStep::mount_dev, errno);
    ::close(target);
    populate_dev(plan, dev_dir);
    return dev_dir;
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

// `prepared`: a detached mount the parent made of the file to bind, or -1 to clone `source`.
void bind_host_file(const InitPlan& plan, int root_fd, MountTarget target_id, const char* source, int prepared) {
    int target = open_target(plan, root_fd, target_id, 0, ReportLevel::warning);
    if (target < 0) return;
    int tree = prepared >= 0 ? prepared : clone_host_tree(source, 0, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (tree < 0 || attach(tree, target, "") != 0)
        init_report(plan, InitStep::bind_host_file, ReportLevel::warning, errno,
                    static_cast<std::size_t>(target_id));
    ::close(target);
}

// Opens the RUN mount point `index` (O_PATH), creating it and its missing parents first: in the rootfs the
// parent made them as stubs already, so what is created here lies inside another mount (/dev, a cache).
int open_step_target(const InitPlan& plan, int root_fd, std::size_t index) {
    const StepMountPlan& mount = plan.step_mounts[index];
    int current = -1;
    for (std::size_t i = 0; mount.target_prefixes[i]; ++i) {
        bool last = mount.target_prefixes[i + 1] == nullptr;
        int fd = open_in_root(root_fd, mount.target_prefixes[i], O_PATH);
        if (fd < 0 && errno == ENOENT) {
            // The parent was resolved inside the rootfs; an entry made in it cannot lead out (a dangling
            // symlink gives EEXIST, and the lookup below resolves it inside the rootfs again).
            int parent = current >= 0 ? current : root_fd;
            int made = -1;
            if (last && !mount.target_is_directory) {
                made = ::openat(parent, mount.target_names[i],
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (made >= 0) ::close(made);
            } else {
                made = ::mkdirat(parent, mount.target_names[i], 0755);
            }
            if (made < 0 && errno != EEXIST) init_die(plan, InitStep::create_step_target, errno, index);
            fd = open_in_root(root_fd, mount.target_prefixes[i], O_PATH);
        }
        if (fd < 0) init_die(plan, InitStep::resolve_step_target, errno, index);
        if (current >= 0) ::close(current);
        current = fd;
    }
    return current;
}

int set_attributes(int tree, unsigned attributes, unsigned recursive) {
    if (attributes == 0) return 0;
    mount_attr attr{};
    attr.attr_set = attributes;
    return ::mount_setattr(tree, "", AT_EMPTY_PATH | recursive, &attr, sizeof attr);
}

// A clone of the mount's source tree: the parent's, or one made here with `source` resolved inside
// `source_root` like every rootfs path.
int step_source_tree(const InitPlan& plan, std::size_t index) {
    const StepMountPlan& mount = plan.step_mounts[index];
    int tree = mount.tree_fd;
    if (tree < 0) {
        int root = ::open(mount.source_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int source = root < 0 ? -1 : open_in_root(root, mount.source, O_PATH);
        if (source >= 0)
            tree =
                ::open_tree(source, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0) init_die(plan, InitStep::clone_step_source, errno, index);
        ::close(source);
        ::close(root);
    }
    if (set_attributes(tree, mount.attributes, AT_RECURSIVE) != 0)
        init_die(plan, InitStep::set_step_attributes, errno, index);
    return tree;
}

// Writes the mount's content into a scratch file in the sandbox's /dev tmpfs and returns a read-only clone
// of it; the scratch name is gone once the clone is attached. The content never touches a disk.
int step_file_tree(const InitPlan& plan, int dev_dir, std::size_t index) {
    const StepMountPlan& mount = plan.step_mounts[index];
    int file =
        ::openat(dev_dir, mount.scratch_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (file < 0) init_die(plan, InitStep::write_step_file, errno, index);
    for (std::size_t written = 0; written < mount.content_size;) {
        ssize_t n = ::write(file, mount.content + written, mount.content_size - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) init_die(plan, InitStep::write_step_file, n < 0 ? errno : ENOSPC, index);
        written += static_cast<std::size_t>(n);
    }
    if (::fchown(file, mount.uid, mount.gid) != 0 || ::fchmod(file, mount.mode) != 0)
        init_die(plan, InitStep::write_step_file, errno, index);
    ::close(file);
    int tree = ::open_tree(dev_dir, mount.scratch_name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) init_die(plan, InitStep::clone_step_source, errno, index);
    if (set_attributes(tree, mount.attributes, 0) != 0)
        init_die(plan, InitStep::set_step_attributes, errno, index);
    return tree;
}

void attach_step_mount(const InitPlan& plan, int root_fd, int dev_dir, std::size_t index) {
    const StepMountPlan& mount = plan.step_mounts[index];
    int tree = -1;
    if (mount.kind == StepMountKind::tree) {
        tree = step_source_tree(plan, index);
    } else if (mount.kind == StepMountKind::file) {
        tree = step_file_tree(plan, dev_dir, index);
    } else {
        FsOption options[] = {{"source", "tmpfs"}, {"size", mount.tmpfs_size}};
        tree = create_filesystem("tmpfs", options, mount.tmpfs_size ? 2 : 1,
                                 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (tree < 0) init_die(plan, InitStep::mount_step_tmpfs, errno, index);
    }
    int target = open_step_target(plan, root_fd, index);
    if (attach(tree, target, "") != 0) init_die(plan, InitStep::attach_step_mount, errno, index);
    ::close(target);
    if (mount.kind == StepMountKind::file) ::unlinkat(dev_dir, mount.scratch_name, 0);
}

}  // namespace

std::string masked_path_name(std::size_t index) {
    if (index < std::size(k_masked_paths)) return k_masked_paths[index];
    index -= std::size(k_masked_paths);
    return index < std::size(k_read_only_paths) ? k_read_only_paths[index] : "?";
}

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
    // A device node that a layer carried (a host disk's numbers, say) must not open: Docker relies on the device
    // cgroup for that, which a kiln step does not have. Set before the sandbox's own mounts go on top.
    mount_attr nodev{};
    nodev.attr_set = MOUNT_ATTR_NODEV;
    if (::mount_setattr(root, "", AT_EMPTY_PATH | AT_RECURSIVE, &nodev, sizeof nodev) != 0)
        init_die(plan, InitStep::set_rootfs_attributes, errno);

    // Every target is resolved inside the rootfs, so an image's symlink cannot point a mount at the host.
    mount_proc(plan, root);
    int dev = mount_dev(plan, root);
    if (plan.mount_wanted[static_cast<std::size_t>(MountTarget::sys)]) bind_sys(plan, root);
    mask_host_state(plan, root);
    for (MountTarget target : {MountTarget::hosts, MountTarget::resolv_conf})
        if (plan.mount_wanted[static_cast<std::size_t>(target)])
            bind_host_file(plan, root, target, k_host_files[target == MountTarget::hosts ? 0 : 1],
                           target == MountTarget::resolv_conf ? plan.resolv_conf_tree_fd : -1);
    // After the sandbox's own, so that a RUN mount under /dev lands in its tmpfs; in target order, so that a
    // mount inside another one's target lands in that mount.
    for (std::size_t i = 0; i < plan.step_mount_count; ++i) attach_step_mount(plan, root, dev, i);
    ::close(dev);
    return root;
}

}  // namespace kiln
