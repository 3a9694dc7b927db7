#include "layers/overlay_mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <optional>
#include <string_view>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

constexpr long k_overlayfs_magic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
// fsconfig(2) copies a string value with strndup_user(value, 256): longer paths go by /proc/self/fd name.
constexpr size_t k_fsconfig_max_string = 255;
// mount(2) copies at most a page of options; a longer string is cut, and the mount fails or misreads.
constexpr size_t k_mount_data_max = 4000;

// The directories of a spec, opened O_PATH: their existence is checked once, with a clear error, and their
// /proc/self/fd names stand in for paths too long for the interface at hand.
struct OpenedSpec {
    std::vector<UniqueFd> lowers;
    UniqueFd upper;
    UniqueFd work;
};

std::string fd_name(const UniqueFd& fd) {
    return str_cat("/proc/self/fd/", fd.get());
}

Result<UniqueFd> open_directory(const std::string& path, std::string_view role) {
    if (!path.starts_with('/'))
        return fail(str_cat("overlay ", role, " \"", path, "\" is not an absolute path"));
    UniqueFd fd(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open overlay ", role, " ", path));
    return fd;
}

Result<OpenedSpec> open_spec(const OverlayMountSpec& spec) {
    if (spec.lowers.empty()) return fail("an overlay needs at least one lower directory");
    if (spec.upper.empty() != spec.work.empty())
        return fail("an overlay's upper and work directories come together: set both or neither");
    OpenedSpec opened;
    opened.lowers.reserve(spec.lowers.size());
    for (const std::string& lower : spec.lowers) {
        KILN_ASSIGN(UniqueFd fd, open_directory(lower, "lower"));
        opened.lowers.push_back(std::move(fd));
    }
    if (!spec.upper.empty()) {
        KILN_ASSIGN(opened.upper, open_directory(spec.upper, "upper"));
        KILN_ASSIGN(opened.work, open_directory(spec.work, "work directory"));
    }
    return opened;
}

// What the kernel logged on an fs_context fd ("e overlay: filesystem on … not supported as upperdir").
std::string kernel_messages(int fs_fd) {
    std::string messages;
    char buffer[1024];
    while (true) {
        ssize_t n = ::read(fs_fd, buffer, sizeof buffer);
        if (n <= 0) break;
        std::string_view line(buffer, static_cast<size_t>(n));
        while (line.ends_with('\n')) line.remove_suffix(1);
        if (line.size() > 2 && line[1] == ' ') line.remove_prefix(2);  // the "e "/"w "/"i " severity
        if (!messages.empty()) messages += "; ";
        messages += line;
    }
    return messages;
}

// The failed step with what the kernel logged about it; errno_value() stays the syscall's.
Error with_kernel_messages(std::string_view what, int err, const std::string& messages) {
    return Error::from_errno(
        messages.empty() ? std::string(what) : str_cat(what, " [kernel: ", messages, "]"), err);
}

Error kernel_error(std::string_view what, int err, int fs_fd) {
    return with_kernel_messages(what, err, kernel_messages(fs_fd));
}

// Whether overlay parses fsconfig() keys itself (6.5+). Before that the kernel wraps it in a legacy context
// that accepts any key, "lowerdir+" included, and only hands the joined options to overlay at mount time.
bool overlay_parses_fsconfig() {
    UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
    return fs && ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "kiln-no-such-option", "", 0) != 0;
}

// Configures and creates the overlay with the new mount API. nullopt when the kernel lacks fsopen or
// "lowerdir+" (before 6.8), for the caller to fall back to mount(2).
Result<std::optional<UniqueFd>> fsconfig_mount(const OverlayMountSpec& spec, const OpenedSpec& opened) {
    UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
    if (!fs) {
        if (errno == ENOSYS) return std::optional<UniqueFd>();
        return fail_errno("fsopen(\"overlay\")");
    }
    if (!overlay_parses_fsconfig()) return std::optional<UniqueFd>();
    ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", "overlay", 0);  // mountinfo's name, as mount(2) gives
    auto set_string = [&](const char* key, const std::string& path, const UniqueFd& fd) -> int {
        const std::string& value = path.size() > k_fsconfig_max_string ? fd_name(fd) : path;
        return ::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0);
    };
    for (size_t i = 0; i < spec.lowers.size(); ++i) {
        if (set_string("lowerdir+", spec.lowers[i], opened.lowers[i]) == 0) continue;
        int err = errno;
        if (i == 0 && err == EINVAL) {
            std::string messages = kernel_messages(fs.get());
            if (messages.find("lowerdir+") != std::string::npos) return std::optional<UniqueFd>();
            return fail(with_kernel_messages(str_cat("fsconfig lowerdir+ ", spec.lowers[i]), err, messages));
        }
        return fail(kernel_error(str_cat("fsconfig lowerdir+ ", spec.lowers[i], " (lower ", i + 1, " of ",
                                         spec.lowers.size(), ")"),
                                 err, fs.get()));
    }
    if (!spec.upper.empty()) {
        if (set_string("upperdir", spec.upper, opened.upper) != 0)
            return fail(kernel_error(str_cat("fsconfig upperdir ", spec.upper), errno, fs.get()));
        if (set_string("workdir", spec.work, opened.work) != 0)
            return fail(kernel_error(str_cat("fsconfig workdir ", spec.work), errno, fs.get()));
    }
    if (::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0)
        return fail(kernel_error("fsconfig userxattr", errno, fs.get()));
    if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
        return fail(kernel_error("creating the overlay", errno, fs.get()));
    UniqueFd mount(::fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
    if (!mount) return fail(kernel_error("fsmount", errno, fs.get()));
    return std::optional<UniqueFd>(std::move(mount));
}

// The mount(2) option string. Paths go as they are where they fit and hold none of the separators ',' ':'
// and '\'; otherwise every directory goes by its /proc/self/fd name (short, and free of separators).
Result<std::string> legacy_options(const OverlayMountSpec& spec, const OpenedSpec& opened) {
    auto build = [&](bool by_fd) {
        std::string data = "lowerdir=";
        for (size_t i = 0; i < spec.lowers.size(); ++i) {
            if (i > 0) data += ':';
            data += by_fd ? fd_name(opened.lowers[i]) : spec.lowers[i];
        }
        if (!spec.upper.empty()) {
            data += str_cat(",upperdir=", by_fd ? fd_name(opened.upper) : spec.upper);
            data += str_cat(",workdir=", by_fd ? fd_name(opened.work) : spec.work);
        }
        data += ",userxattr";
        return data;
    };
    auto plain = [](const std::string& path) { return path.find_first_of(",:\\") == std::string::npos; };
    bool by_fd = !plain(spec.upper) || !plain(spec.work);
    for (const std::string& lower : spec.lowers) by_fd = by_fd || !plain(lower);
    std::string data = build(by_fd);
    if (data.size() > k_mount_data_max) data = build(true);
    if (data.size() > k_mount_data_max)
        return fail(str_cat(spec.lowers.size(), " lower directories do not fit in mount(2)'s options (",
                            data.size(), " bytes; the limit is a page)"));
    return data;
}

Result<MountGuard> legacy_mount(const OverlayMountSpec& spec, const OpenedSpec& opened, const std::string& target) {
    KILN_ASSIGN(std::string data, legacy_options(spec, opened));
    if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0)
        return fail_errno("mount(2) overlay");
    return MountGuard(target);
}

// The legacy route to a detached mount: mount(2) on a scratch directory, clone the mount detached, and take
// the scratch mount away again.
Result<UniqueFd> legacy_detached_mount(const OverlayMountSpec& spec, const OpenedSpec& opened) {
    KILN_ASSIGN(TempDir scratch, TempDir::create(default_temp_parent(), "kiln-overlay-"));
    KILN_ASSIGN(MountGuard mounted, legacy_mount(spec, opened, scratch.path()));
    UniqueFd tree(::open_tree(AT_FDCWD, scratch.path().c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", scratch.path()));
    KILN_TRY(mounted.unmount());
    return tree;
}

// The kernel refuses an overlay of a single lower without an upper ("at least 2 lowerdir are needed"); a
// read-only bind mount of that lower is the same view but for its whiteouts, which it shows as 0/0 devices.
Result<UniqueFd> read_only_bind(const OverlayMountSpec& spec) {
    UniqueFd tree(::open_tree(AT_FDCWD, spec.lowers.front().c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) return fail_errno(str_cat("open_tree(OPEN_TREE_CLONE) ", spec.lowers.front()));
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
        return fail_errno(
            str_cat("mount_setattr(MOUNT_ATTR_RDONLY) on a bind mount of ", spec.lowers.front()));
    return tree;
}

bool single_read_only_lower(const OverlayMountSpec& spec) {
    return spec.lowers.size() == 1 && spec.upper.empty();
}

std::string describe(const OverlayMountSpec& spec) {
    std::string text = str_cat(spec.lowers.size(), spec.lowers.size() == 1 ? " lower" : " lowers");
    if (!spec.lowers.empty()) text += str_cat(", topmost ", spec.lowers.front());
    text += spec.upper.empty() ? ", read-only" : str_cat(", upper ", spec.upper);
    return text;
}

}  // namespace

Result<MountGuard> attach_mount(int mount_fd, const std::string& target) {
    if (::move_mount(mount_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
        return fail_errno(str_cat("move_mount to ", target));
    return MountGuard(target);
}

Result<MountGuard> mount_overlay(const OverlayMountSpec& spec, const std::string& target, OverlayMountApi api) {
    std::string context = str_cat("mounting an overlay at ", target, " (", describe(spec), ")");
    auto opened = open_spec(spec);
    if (!opened) return fail(std::move(opened.error()).context(context));
    if (single_read_only_lower(spec)) {
        auto bind = read_only_bind(spec);
        if (!bind) return fail(std::move(bind.error()).context(context));
        return with_context(attach_mount(bind->get(), target), context);
    }
    if (api == OverlayMountApi::automatic) {
        auto mount = fsconfig_mount(spec, *opened);
        if (!mount) return fail(std::move(mount.error()).context(context));
        if (*mount) return with_context(attach_mount((*mount)->get(), target), context);
    }
    return with_context(legacy_mount(spec, *opened, target), context);
}

Result<UniqueFd> make_overlay_mount(const OverlayMountSpec& spec, OverlayMountApi api) {
    std::string context = str_cat("making an overlay mount (", describe(spec), ")");
    auto opened = open_spec(spec);
    if (!opened) return fail(std::move(opened.error()).context(context));
    if (single_read_only_lower(spec)) return with_context(read_only_bind(spec), context);
    if (api == OverlayMountApi::automatic) {
        auto mount = fsconfig_mount(spec, *opened);
        if (!mount) return fail(std::move(mount.error()).context(context));
        if (*mount) return std::move(**mount);
    }
    return with_context(legacy_detached_mount(spec, *opened), context);
}

Status probe_overlay(const std::string& store_dir) {
    std::string context = str_cat("overlay mounts with the store ", store_dir);
    struct statfs fs;
    if (::statfs(store_dir.c_str(), &fs) != 0)
        return fail(Error::from_errno(str_cat("statfs ", store_dir), errno).context(context));
    if (fs.f_type == k_overlayfs_magic)
        return fail(
            Error(str_cat("the store is on overlayfs, which cannot hold an overlay's upper directory; "
                          "put it on ext4, xfs, btrfs or tmpfs (in a pod: an emptyDir)"))
                .context(context));
    auto scratch = TempDir::create(store_dir, ".kiln-overlay-probe-");
    if (!scratch) return fail(std::move(scratch.error()).context(context));
    const std::string& root = scratch->path();
    for (const char* dir : {"/lower", "/lower/dir", "/upper", "/work", "/merged"})
        if (::mkdir((root + dir).c_str(), 0755) != 0)
            return fail(Error::from_errno(str_cat("mkdir ", root, dir), errno).context(context));
    for (const char* file : {"/lower/file", "/lower/dir/file"}) {
        UniqueFd fd(::open((root + file).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        if (!fd) return fail(Error::from_errno(str_cat("create ", root, file), errno).context(context));
    }
    OverlayMountSpec spec{{root + "/lower"}, root + "/upper", root + "/work"};
    std::string merged = root + "/merged";
    KILN_ASSIGN(MountGuard mounted, with_context(mount_overlay(spec, merged), context));
    // What a RUN step does most: see the lower, delete from it (whiteouts; without "userxattr" a user
    // namespace gets EIO here), write the upper.
    Status used;
    struct stat st;
    if (::stat((merged + "/file").c_str(), &st) != 0)
        used = fail_errno("the lower's file is not visible through the overlay");
    else if (::unlink((merged + "/dir/file").c_str()) != 0 || ::rmdir((merged + "/dir").c_str()) != 0)
        used = fail_errno("deleting a lower directory through the overlay");
    else if (::unlink((merged + "/file").c_str()) != 0)
        used = fail_errno("deleting a lower file through the overlay");
    Status unmounted = mounted.unmount();
    KILN_TRY_CONTEXT(used, context);
    KILN_TRY_CONTEXT(unmounted, context);
    return {};
}

}  // namespace kiln
