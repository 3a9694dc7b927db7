#include "builder/sandbox/ownership_supervisor.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {
namespace {

constexpr std::uint32_t k_unchanged = 0xffffffff;  // (uid_t)-1: "leave it" to chown and setres*id
constexpr size_t k_max_groups = 65536;             // NGROUPS_MAX
constexpr int k_max_ancestors = 256;
constexpr size_t k_prune_floor = 4096;  // threads recorded before the first look for ended ones

// The ids a thread pretends to have.
struct Ids {
    std::uint32_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
    std::uint32_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
    std::vector<gid_t> groups;
};

// How a call is answered: with a value or an errno, by letting the kernel run it, or already (ADDFD).
struct Answer {
    std::int64_t value = 0;
    int error = 0;
    bool proceed = false;
    bool sent = false;
};

Answer value(std::int64_t v) { return {.value = v}; }
Answer error(int err) { return {.error = err}; }
Answer proceed() { return {.proceed = true}; }

bool is_one_of(std::uint32_t id, std::initializer_list<std::uint32_t> ids) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The "Name:\tvalue" line of a /proc/PID/status text.
std::optional<std::string> status_field(std::string_view status, std::string_view name) {
    for (const std::string& line : split(status, '\n'))
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':')
            return std::string(trim(std::string_view(line).substr(name.size() + 1)));
    return std::nullopt;
}

std::optional<pid_t> status_pid(std::string_view status, std::string_view name) {
    std::optional<std::string> field = status_field(status, name);
    std::uint64_t value = 0;
    if (!field || !parse_uint64(*field, value)) return std::nullopt;
    return static_cast<pid_t>(value);
}

std::optional<std::string> read_status(pid_t pid) {
    auto text = read_file(str_cat("/proc/", pid, "/status"), 1 << 16);
    if (!text) return std::nullopt;
    return std::move(*text);
}

class Server {
public:
    Server(int listener) : m_listener(listener), m_own_pid(::getpid()) {}

    // Answers one notification; false when the listener is done.
    bool answer_one() {
        seccomp_notif request{};
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0)
            return errno == EINTR || errno == ENOENT;  // ENOENT: the caller died before it was read
        Answer answer = dispatch(request);
        if (answer.sent) return true;
        seccomp_notif_resp response{};
        response.id = request.id;
        if (answer.proceed) {
            response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        } else if (answer.error != 0) {
            response.error = -answer.error;
        } else {
            response.val = answer.value;
        }
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_SEND, &response) != 0 && errno != ENOENT) note_failure("send", errno);
        return true;
    }

private:
    Answer dispatch(const seccomp_notif& request) {
        const pid_t pid = static_cast<pid_t>(request.pid);
        const auto& arg = request.data.args;
        auto id = [&](int i) { return static_cast<std::uint32_t>(arg[i]); };
        auto fd_arg = [&](int i) { return static_cast<int>(static_cast<std::int32_t>(arg[i])); };
        const long number = request.data.nr;
        Ids& ids = ids_of(pid);
        switch (number) {
            case SYS_getuid: return value(ids.ruid);
            case SYS_geteuid: return value(ids.euid);
            case SYS_getgid: return value(ids.rgid);
            case SYS_getegid: return value(ids.egid);
            case SYS_getresuid: return write_three(request, ids.ruid, ids.euid, ids.suid);
            case SYS_getresgid: return write_three(request, ids.rgid, ids.egid, ids.sgid);
            case SYS_getgroups: return get_groups(request, ids);
            case SYS_setuid: return set_one(ids.euid == 0, id(0), ids.ruid, ids.euid, ids.suid, ids.fsuid);
            case SYS_setgid: return set_one(ids.euid == 0, id(0), ids.rgid, ids.egid, ids.sgid, ids.fsgid);
            case SYS_setreuid: return set_two(ids.euid == 0, id(0), id(1), ids.ruid, ids.euid, ids.suid, ids.fsuid);
            case SYS_setregid: return set_two(ids.euid == 0, id(0), id(1), ids.rgid, ids.egid, ids.sgid, ids.fsgid);
            case SYS_setresuid:
                return set_three(ids.euid == 0, id(0), id(1), id(2), ids.ruid, ids.euid, ids.suid, ids.fsuid);
            case SYS_setresgid:
                return set_three(ids.euid == 0, id(0), id(1), id(2), ids.rgid, ids.egid, ids.sgid, ids.fsgid);
            case SYS_setfsuid: return set_fs(ids.euid == 0, id(0), ids.ruid, ids.euid, ids.suid, ids.fsuid);
            case SYS_setfsgid: return set_fs(ids.euid == 0, id(0), ids.rgid, ids.egid, ids.sgid, ids.fsgid);
            case SYS_setgroups: return set_groups(request, ids);
#ifdef SYS_chown
            case SYS_chown: return change_owner(request, AT_FDCWD, arg[0], id(1), id(2), 0);
            case SYS_lchown: return change_owner(request, AT_FDCWD, arg[0], id(1), id(2), AT_SYMLINK_NOFOLLOW);
#endif
            case SYS_fchown: return change_owner(request, fd_arg(0), 0, id(1), id(2), AT_EMPTY_PATH);
            case SYS_fchownat:
                return change_owner(request, fd_arg(0), arg[1], id(2), id(3), static_cast<int>(arg[4]));
#ifdef SYS_mkdir
            case SYS_mkdir: return make_directory(request, ids, AT_FDCWD, arg[0], static_cast<mode_t>(arg[1]));
#endif
            case SYS_mkdirat: return make_directory(request, ids, fd_arg(0), arg[1], static_cast<mode_t>(arg[2]));
#ifdef SYS_open
            case SYS_open:
                return create_file(request, ids, AT_FDCWD, arg[0], arg[1], static_cast<mode_t>(arg[2]));
#endif
#ifdef SYS_creat
            case SYS_creat:
                return create_file(request, ids, AT_FDCWD, arg[0], O_CREAT | O_WRONLY | O_TRUNC,
                                   static_cast<mode_t>(arg[1]));
#endif
            case SYS_openat:
                return create_file(request, ids, fd_arg(0), arg[1], arg[2], static_cast<mode_t>(arg[3]));
            case SYS_openat2: return open_with_how(request, ids);
#ifdef SYS_stat
            case SYS_stat: return report_owner(request, AT_FDCWD, arg[0], arg[1], 0);
            case SYS_lstat: return report_owner(request, AT_FDCWD, arg[0], arg[1], AT_SYMLINK_NOFOLLOW);
            case SYS_fstat: return report_owner(request, fd_arg(0), 0, arg[1], AT_EMPTY_PATH);
#endif
            case SYS_newfstatat:
                return report_owner(request, fd_arg(0), arg[1], arg[2], static_cast<int>(arg[3]));
            case SYS_statx:
                return report_owner(request, fd_arg(0), arg[1], arg[4], static_cast<int>(arg[2]),
                                    static_cast<unsigned>(arg[3]));
            default: return proceed();
        }
    }

    // --- ids ---

    // The ids of thread `tid`: recorded, or those of the nearest ancestor (its thread group, then its parent,
    // and so on) that has some, which it inherited when it was made.
    Ids& ids_of(pid_t tid) {
        if (Ids* known = find_live(tid)) return *known;
        Ids inherited;
        pid_t at = tid;
        for (int depth = 0; depth < k_max_ancestors; ++depth) {
            std::optional<std::string> status = read_status(at);
            if (!status) break;
            std::optional<pid_t> group = status_pid(*status, "Tgid");
            std::optional<pid_t> next = group && *group != at ? group : status_pid(*status, "PPid");
            if (!next || *next <= 0 || *next == m_own_pid) break;
            if (Ids* known = find_live(*next)) {
                inherited = *known;
                break;
            }
            at = *next;
        }
        if (m_threads.size() >= m_prune_at) prune();
        return m_threads.insert_or_assign(tid, Thread{std::move(inherited), start_time(tid)}).first->second.ids;
    }

    // The recorded ids of `tid`, unless that thread has ended and its number now names another.
    Ids* find_live(pid_t tid) {
        auto found = m_threads.find(tid);
        if (found == m_threads.end()) return nullptr;
        if (found->second.start != start_time(tid)) {
            m_threads.erase(found);
            return nullptr;
        }
        return &found->second.ids;
    }

    // Forgets the threads that have ended, so that a step that makes many processes costs no more memory than
    // those alive at once.
    void prune() {
        std::erase_if(m_threads, [](const auto& entry) { return entry.second.start != start_time(entry.first); });
        m_prune_at = std::max<size_t>(k_prune_floor, 2 * m_threads.size());
    }

    // When thread `tid` started (field 22 of /proc/TID/stat, in clock ticks since boot); 0 when it is gone.
    static std::uint64_t start_time(pid_t tid) {
        auto stat = read_file(str_cat("/proc/", tid, "/stat"), 4096);
        if (!stat) return 0;
        size_t end_of_name = stat->rfind(')');  // the command name may hold spaces and parentheses
        if (end_of_name == std::string::npos) return 0;
        std::vector<std::string> fields = split(std::string_view(*stat).substr(end_of_name + 2), ' ');
        std::uint64_t start = 0;
        return fields.size() > 19 && parse_uint64(fields[19], start) ? start : 0;
    }

    Answer write_three(const seccomp_notif& request, std::uint32_t a, std::uint32_t b, std::uint32_t c) {
        pid_t pid = static_cast<pid_t>(request.pid);
        for (int i = 0; i < 3; ++i) {
            std::uint32_t id = i == 0 ? a : i == 1 ? b : c;
            if (!write_memory(pid, request.data.args[i], &id, sizeof id)) return error(EFAULT);
        }
        return value(0);
    }

    Answer get_groups(const seccomp_notif& request, const Ids& ids) {
        std::uint64_t size = static_cast<std::uint32_t>(request.data.args[0]);
        if (size == 0) return value(static_cast<std::int64_t>(ids.groups.size()));
        if (size < ids.groups.size()) return error(EINVAL);
        if (!ids.groups.empty() && !write_memory(static_cast<pid_t>(request.pid), request.data.args[1],
                                                 ids.groups.data(), ids.groups.size() * sizeof(gid_t)))
            return error(EFAULT);
        return value(static_cast<std::int64_t>(ids.groups.size()));
    }

    Answer set_groups(const seccomp_notif& request, Ids& ids) {
        if (ids.euid != 0) return error(EPERM);
        std::uint64_t size = static_cast<std::uint32_t>(request.data.args[0]);
        if (size > k_max_groups) return error(EINVAL);
        std::vector<gid_t> groups(size);
        if (size > 0 && !read_memory(static_cast<pid_t>(request.pid), request.data.args[1], groups.data(),
                                     size * sizeof(gid_t)))
            return error(EFAULT);
        ids.groups = std::move(groups);
        return value(0);
    }

    // setuid(2) and setgid(2): a privileged caller sets all three; another may set its effective id to its
    // real or saved one.
    static Answer set_one(bool privileged, std::uint32_t id, std::uint32_t& real, std::uint32_t& effective,
                          std::uint32_t& saved, std::uint32_t& filesystem) {
        if (privileged) {
            real = effective = saved = id;
        } else if (id == real || id == saved) {
            effective = id;
        } else {
            return error(EPERM);
        }
        filesystem = effective;
        return value(0);
    }

    // setreuid(2) and setregid(2).
    static Answer set_two(bool privileged, std::uint32_t new_real, std::uint32_t new_effective, std::uint32_t& real,
                          std::uint32_t& effective, std::uint32_t& saved, std::uint32_t& filesystem) {
        if (!privileged && ((new_real != k_unchanged && !is_one_of(new_real, {real, effective})) ||
                            (new_effective != k_unchanged && !is_one_of(new_effective, {real, effective, saved}))))
            return error(EPERM);
        std::uint32_t old_real = real;
        if (new_real != k_unchanged) real = new_real;
        if (new_effective != k_unchanged) effective = new_effective;
        if (new_real != k_unchanged || (new_effective != k_unchanged && new_effective != old_real)) saved = effective;
        filesystem = effective;
        return value(0);
    }

    // setresuid(2) and setresgid(2).
    static Answer set_three(bool privileged, std::uint32_t new_real, std::uint32_t new_effective,
                            std::uint32_t new_saved, std::uint32_t& real, std::uint32_t& effective,
                            std::uint32_t& saved, std::uint32_t& filesystem) {
        if (!privileged) {
            for (std::uint32_t id : {new_real, new_effective, new_saved})
                if (id != k_unchanged && !is_one_of(id, {real, effective, saved})) return error(EPERM);
        }
        if (new_real != k_unchanged) real = new_real;
        if (new_effective != k_unchanged) effective = new_effective;
        if (new_saved != k_unchanged) saved = new_saved;
        filesystem = effective;
        return value(0);
    }

    // setfsuid(2) and setfsgid(2) return the old id, whether or not they change it.
    static Answer set_fs(bool privileged, std::uint32_t id, std::uint32_t real, std::uint32_t effective,
                         std::uint32_t saved, std::uint32_t& filesystem) {
        std::uint32_t old = filesystem;
        if (id != k_unchanged && (privileged || is_one_of(id, {real, effective, saved, filesystem}))) filesystem = id;
        return value(old);
    }

    // --- files ---

    // chown, lchown, fchown and fchownat: the owner is recorded as the file's override, or the override
    // removed where it becomes 0:0, which the namespace holds for real.
    Answer change_owner(const seccomp_notif& request, int dirfd, std::uint64_t path_address, std::uint32_t uid,
                        std::uint32_t gid, int flags) {
        pid_t pid = static_cast<pid_t>(request.pid);
        std::string path;
        if (path_address != 0 || !(flags & AT_EMPTY_PATH)) {
            auto read = read_string(pid, path_address);
            if (!read) return error(read.error().errno_value() ? read.error().errno_value() : EFAULT);
            path = std::move(*read);
        }
        if (!still_valid(request)) return {.sent = true};
        Result<UniqueFd> file = path.empty() && (flags & AT_EMPTY_PATH)
                                    ? open_descriptor(pid, dirfd)
                                    : open_in_target(pid, dirfd, path,
                                                     O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (!file) return error(errno_of(file.error()));
        struct stat st {};
        if (::fstat(file->get(), &st) != 0) return error(errno);
        if (uid == k_unchanged && gid == k_unchanged) return value(0);
        std::optional<OverrideStat> recorded = read_override_stat(file->get(), nullptr);
        std::uint32_t new_uid = uid != k_unchanged ? uid : recorded ? recorded->uid : st.st_uid;
        std::uint32_t new_gid = gid != k_unchanged ? gid : recorded ? recorded->gid : st.st_gid;
        if (new_uid == st.st_uid && new_gid == st.st_gid)
            remove_override_stat(file->get(), nullptr);
        else
            (void)write_override_stat(file->get(), nullptr, {new_uid, new_gid, st.st_mode});  // none on symlinks
        // As the kernel's chown: a regular file loses its setuid bit, and its setgid bit when group-executable.
        mode_t cleared = st.st_mode & 07777 & ~static_cast<mode_t>(S_ISUID);
        if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) cleared &= ~static_cast<mode_t>(S_ISGID);
        if (S_ISREG(st.st_mode) && cleared != (st.st_mode & 07777))
            ::chmod(str_cat("/proc/self/fd/", file->get()).c_str(), cleared);
        return value(0);
    }

    // stat and its kin (statx when `statx_mask` is set) of a file whose owner is recorded: the recorded owner,
    // as tools that compare the owner they set with the one they read (shadow's useradd copies /etc/shadow's)
    // expect. Anything else, or a path this cannot follow as the kernel does (a magic link under /proc), the
    // kernel answers itself.
    Answer report_owner(const seccomp_notif& request, int dirfd, std::uint64_t path_address, std::uint64_t out,
                        int flags, std::optional<unsigned> statx_mask = std::nullopt) {
        pid_t pid = static_cast<pid_t>(request.pid);
        std::string path;
        if (path_address != 0) {
            auto read = read_string(pid, path_address);
            if (!read) return proceed();
            path = std::move(*read);
        }
        if (path.empty() && !(flags & AT_EMPTY_PATH)) return proceed();
        Result<UniqueFd> file = path.empty() ? open_descriptor(pid, dirfd)
                                             : open_in_target(pid, dirfd, path,
                                                              O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (!file) return proceed();
        std::optional<OverrideStat> recorded = read_override_stat(file->get(), nullptr);
        if (!recorded) return proceed();
        if (statx_mask) {
            struct statx result {};
            if (::statx(file->get(), "", AT_EMPTY_PATH | (flags & AT_STATX_SYNC_TYPE), *statx_mask, &result) != 0 ||
                !override_applies(*recorded, result.stx_mode))
                return proceed();
            result.stx_uid = recorded->uid;
            result.stx_gid = recorded->gid;
            if (!still_valid(request)) return {.sent = true};
            return write_memory(pid, out, &result, sizeof result) ? value(0) : error(EFAULT);
        }
        struct stat result {};
        if (::fstat(file->get(), &result) != 0 || !override_applies(*recorded, result.st_mode)) return proceed();
        result.st_uid = recorded->uid;
        result.st_gid = recorded->gid;
        if (!still_valid(request)) return {.sent = true};
        return write_memory(pid, out, &result, sizeof result) ? value(0) : error(EFAULT);
    }

    // mkdir and mkdirat by a thread with other filesystem ids than 0: made here, with those ids recorded.
    Answer make_directory(const seccomp_notif& request, const Ids& ids, int dirfd, std::uint64_t path_address,
                          mode_t mode) {
        if (ids.fsuid == 0 && ids.fsgid == 0) return proceed();
        pid_t pid = static_cast<pid_t>(request.pid);
        auto path = read_string(pid, path_address);
        if (!path) return error(EFAULT);
        std::string trimmed = *path;
        while (trimmed.size() > 1 && trimmed.ends_with('/')) trimmed.pop_back();
        size_t slash = trimmed.rfind('/');
        std::string name = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
        std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : trimmed.substr(0, slash);
        if (name.empty() || name == "." || name == ".." || name == "/") return proceed();
        std::optional<mode_t> umask = umask_of(pid);
        if (!umask) return proceed();
        if (!still_valid(request)) return {.sent = true};
        auto directory = open_in_target(pid, dirfd, parent, O_PATH | O_DIRECTORY, 0);
        if (!directory) return error(errno_of(directory.error()));
        if (::mkdirat(directory->get(), name.c_str(), 0700) != 0) return error(errno);
        mode_t permissions = mode & 07777 & ~*umask;
        ::fchmodat(directory->get(), name.c_str(), permissions, 0);
        UniqueFd made(::openat(directory->get(), name.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
        if (made) (void)write_override_stat(made.get(), nullptr, {ids.fsuid, ids.fsgid, S_IFDIR | permissions});
        return value(0);
    }

    Answer open_with_how(const seccomp_notif& request, const Ids& ids) {
        open_how how{};
        std::uint64_t size = std::min<std::uint64_t>(request.data.args[3], sizeof how);
        if (size < sizeof how || !read_memory(static_cast<pid_t>(request.pid), request.data.args[2], &how, sizeof how))
            return proceed();
        if (how.resolve != 0) return proceed();
        return create_file(request, ids, static_cast<int>(static_cast<std::int32_t>(request.data.args[0])),
                           request.data.args[1], how.flags, static_cast<mode_t>(how.mode));
    }

    // open, creat, openat and openat2 with O_CREAT by a thread with other filesystem ids than 0: the file is
    // opened here, those ids recorded as its owner if this made it, and the descriptor installed in the
    // caller as the call's result.
    Answer create_file(const seccomp_notif& request, const Ids& ids, int dirfd, std::uint64_t path_address,
                       std::uint64_t flags, mode_t mode) {
        if (!(flags & O_CREAT) || (ids.fsuid == 0 && ids.fsgid == 0)) return proceed();
        pid_t pid = static_cast<pid_t>(request.pid);
        auto path = read_string(pid, path_address);
        if (!path) return error(EFAULT);
        std::optional<mode_t> umask = umask_of(pid);
        if (!umask) return proceed();
        if (!still_valid(request)) return {.sent = true};
        constexpr std::uint64_t known = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                                        O_DSYNC | O_SYNC | O_DIRECT | O_DIRECTORY | O_NOFOLLOW | O_NOATIME |
                                        O_CLOEXEC | 0100000 /* O_LARGEFILE, as the kernel has it */;
        std::uint64_t wanted = flags & known & ~static_cast<std::uint64_t>(O_CLOEXEC);
        mode_t permissions = mode & 07777 & ~*umask;
        bool made = true;
        Result<UniqueFd> file = fail("not opened");
        for (int attempt = 0; attempt < 4; ++attempt) {
            file = open_in_target(pid, dirfd, *path, wanted | O_EXCL, permissions);
            made = true;
            if (file || errno_of(file.error()) != EEXIST || (flags & O_EXCL)) break;
            file = open_in_target(pid, dirfd, *path, wanted & ~static_cast<std::uint64_t>(O_CREAT), 0);
            made = false;
            if (file || errno_of(file.error()) != ENOENT) break;  // ENOENT: removed in between, or a dangling symlink
        }
        if (!file) return error(errno_of(file.error()));
        if (made) {
            ::fchmod(file->get(), permissions);  // kiln's umask may be stricter than the caller's
            (void)write_override_stat(file->get(), nullptr, {ids.fsuid, ids.fsgid, S_IFREG | permissions});
        }
        seccomp_notif_addfd addfd{};
        addfd.id = request.id;
        addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
        addfd.srcfd = static_cast<std::uint32_t>(file->get());
        addfd.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0 || errno == ENOENT) return {.sent = true};
        return error(errno);
    }

    // --- the caller's memory and files ---

    bool still_valid(const seccomp_notif& request) {
        std::uint64_t id = request.id;
        return ::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
    }

    static bool read_memory(pid_t pid, std::uint64_t address, void* out, size_t size) {
        iovec local{out, size};
        iovec remote{reinterpret_cast<void*>(address), size};
        return ::process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
    }

    static bool write_memory(pid_t pid, std::uint64_t address, const void* in, size_t size) {
        iovec local{const_cast<void*>(in), size};
        iovec remote{reinterpret_cast<void*>(address), size};
        return ::process_vm_writev(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
    }

    // A NUL-terminated path in the caller's memory, read a page at a time (a later page may be unmapped).
    static Result<std::string> read_string(pid_t pid, std::uint64_t address) {
        constexpr size_t page = 4096;
        std::string text;
        char buffer[page];
        while (text.size() < PATH_MAX) {
            size_t chunk = page - address % page;
            iovec local{buffer, chunk};
            iovec remote{reinterpret_cast<void*>(address), chunk};
            ssize_t got = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (got <= 0) return fail(Error::from_errno("read the caller's path", EFAULT));
            const char* end = static_cast<const char*>(std::memchr(buffer, '\0', static_cast<size_t>(got)));
            if (end) return text.append(buffer, static_cast<size_t>(end - buffer));
            text.append(buffer, static_cast<size_t>(got));
            address += static_cast<std::uint64_t>(got);
        }
        return fail(Error::from_errno("read the caller's path", ENAMETOOLONG));
    }

    static std::optional<mode_t> umask_of(pid_t pid) {
        std::optional<std::string> status = read_status(pid);
        std::optional<std::string> field = status ? status_field(*status, "Umask") : std::nullopt;
        if (!field || field->empty()) return std::nullopt;
        mode_t mask = 0;
        for (char c : *field) {
            if (c < '0' || c > '7') return std::nullopt;
            mask = static_cast<mode_t>(mask * 8 + static_cast<mode_t>(c - '0'));
        }
        return mask & 0777;
    }

    static int errno_of(const Error& error) { return error.errno_value() ? error.errno_value() : EIO; }

    // The caller's descriptor `fd` (AT_FDCWD: its working directory), reopened O_PATH.
    static Result<UniqueFd> open_descriptor(pid_t pid, int fd) {
        std::string link = fd == AT_FDCWD ? str_cat("/proc/", pid, "/cwd") : str_cat("/proc/", pid, "/fd/", fd);
        UniqueFd opened(::open(link.c_str(), O_PATH | O_CLOEXEC));
        if (!opened) return fail_errno(str_cat("open ", link), errno == ENOENT ? EBADF : errno);
        return opened;
    }

    // `path` as the caller resolves it from `dirfd` (AT_FDCWD: its working directory), opened with `flags` and
    // `mode` in the caller's root, which it cannot leave: "..", absolute paths and symlinks stop there.
    static Result<UniqueFd> open_in_target(pid_t pid, int dirfd, const std::string& path, std::uint64_t flags,
                                           mode_t mode) {
        std::string absolute = path;
        if (!path.starts_with('/')) {
            std::string link =
                dirfd == AT_FDCWD ? str_cat("/proc/", pid, "/cwd") : str_cat("/proc/", pid, "/fd/", dirfd);
            auto base = read_link_at(AT_FDCWD, link, link);
            if (!base) return fail(Error::from_errno(link, EBADF));
            // A path outside the caller's root (or a deleted directory) has no place in it.
            if (!base->starts_with('/') || base->ends_with(" (deleted)")) return fail(Error::from_errno(link, ENOENT));
            absolute = str_cat(*base, "/", path);
        }
        std::string root_link = str_cat("/proc/", pid, "/root");
        UniqueFd root(::open(root_link.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root) return fail_errno(str_cat("open ", root_link));
        open_how how{};
        how.flags = flags | O_CLOEXEC;
        how.mode = (flags & O_CREAT) ? mode : 0;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        long fd = ::syscall(SYS_openat2, root.get(), absolute.c_str(), &how, sizeof how);
        if (fd < 0) return fail_errno(str_cat("openat2 ", absolute));
        return UniqueFd(static_cast<int>(fd));
    }

    void note_failure(const char* what, int err) {
        if (m_failed) return;
        m_failed = true;
        log_warn("the RUN's ownership supervisor could not ", what, " a reply: ", std::strerror(err));
    }

    int m_listener;
    pid_t m_own_pid;
    struct Thread {
        Ids ids;
        std::uint64_t start = 0;  // start_time(), which tells it from a later thread with its number
    };
    std::unordered_map<pid_t, Thread> m_threads;
    size_t m_prune_at = k_prune_floor;
    bool m_failed = false;
};

// Waits until `fd` is readable (true) or the stop event fires or `fd` hangs up with nothing left (false).
bool wait_readable(int fd, int stop_event) {
    while (true) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {stop_event, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (fds[1].revents) return false;
        if (fds[0].revents & POLLIN) return true;
        if (fds[0].revents) return false;
    }
}

}  // namespace

Result<std::unique_ptr<OwnershipSupervisor>> OwnershipSupervisor::start(UniqueFd socket) {
    UniqueFd stop_event(::eventfd(0, EFD_CLOEXEC));
    if (!stop_event) return fail_errno("eventfd for the ownership supervisor");
    std::unique_ptr<OwnershipSupervisor> supervisor(new OwnershipSupervisor(std::move(socket), std::move(stop_event)));
    supervisor->m_thread = std::thread([raw = supervisor.get()] { raw->serve(); });
    return supervisor;
}

OwnershipSupervisor::OwnershipSupervisor(UniqueFd socket, UniqueFd stop_event)
    : m_socket(std::move(socket)), m_stop_event(std::move(stop_event)) {}

OwnershipSupervisor::~OwnershipSupervisor() { stop(); }

void OwnershipSupervisor::stop() {
    if (!m_thread.joinable()) return;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = ::write(m_stop_event.get(), &one, sizeof one);
    m_thread.join();
}

void OwnershipSupervisor::serve() {
    if (!wait_readable(m_socket.get(), m_stop_event.get())) return;
    char byte = 0;
    UniqueFd listener = receive_descriptor(m_socket.get(), &byte, 1).fd;
    if (!listener) return;
    Server server(listener.get());
    while (wait_readable(listener.get(), m_stop_event.get()))
        if (!server.answer_one()) break;
}

}  // namespace kiln
