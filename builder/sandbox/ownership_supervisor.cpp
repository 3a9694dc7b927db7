#include "builder/sandbox/ownership_supervisor.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "builder/sandbox/pretended_ids.hpp"
#include "builder/sandbox/seccomp_caller.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/proc_files.hpp"
#include "common/strings.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {
namespace {

constexpr size_t k_max_groups = 65536;  // NGROUPS_MAX
constexpr int k_max_ancestors = 256;
// Recorded threads, and bytes of their group lists, past which ended threads are forgotten.
constexpr size_t k_prune_floor = 4096;
constexpr size_t k_group_bytes_floor = 64 << 20;

// How a call is answered: with a value or an errno, by letting the kernel run it, or already (ADDFD, or the
// caller is gone).
struct Answer {
    std::int64_t value = 0;
    int error = 0;
    bool proceed = false;
    bool sent = false;
};

Answer value(std::int64_t v) { return {.value = v}; }
Answer error(int err) { return {.error = err}; }
Answer proceed() { return {.proceed = true}; }
Answer done() { return {.sent = true}; }
Answer result(int err) { return err == 0 ? value(0) : error(err); }

int errno_of(const Error& failure) { return failure.errno_value() ? failure.errno_value() : EIO; }

class Server {
public:
    explicit Server(int listener) : m_listener(listener), m_own_pid(::getpid()) {}

    // Answers one notification; false when the listener is done.
    bool answer_one() {
        seccomp_notif request{};
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0)
            return errno == EINTR || errno == ENOENT;  // ENOENT: the caller died before it was read
        Caller caller{request, static_cast<pid_t>(request.pid), open_proc(static_cast<pid_t>(request.pid)), {}};
        if (caller.proc) caller.memory.reset(::openat(caller.proc.get(), "mem", O_RDWR | O_CLOEXEC));
        if (!still_valid(request)) return true;  // the caller is gone; what was opened may be another's
        Answer answer = caller.proc && caller.memory ? dispatch(caller) : error(ESRCH);
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
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_SEND, &response) != 0 && errno != ENOENT)
            note_failure("send", errno);
        return true;
    }

private:
    Answer dispatch(const Caller& caller) {
        const long number = caller.request.data.nr;
        PretendedIds& ids = ids_of(caller);
        switch (number) {
            case SYS_getuid: return value(ids.ruid);
            case SYS_geteuid: return value(ids.euid);
            case SYS_getgid: return value(ids.rgid);
            case SYS_getegid: return value(ids.egid);
            case SYS_getresuid: return write_three(caller, ids.ruid, ids.euid, ids.suid);
            case SYS_getresgid: return write_three(caller, ids.rgid, ids.egid, ids.sgid);
            case SYS_getgroups: return get_groups(caller, ids);
            case SYS_exit_group:
                adopt_children(caller, ids);  // an orphan keeps the ids it had, not its new parent's
                return proceed();
            default: break;
        }
        if (is_id_change(number)) {
            // Children not seen yet were made with the ids before this change.
            adopt_children(caller, ids);
            switch (number) {
                case SYS_setuid: return result(set_uid(ids, caller.id(0)));
                case SYS_setgid: return result(set_gid(ids, caller.id(0)));
                case SYS_setreuid: return result(set_reuid(ids, caller.id(0), caller.id(1)));
                case SYS_setregid: return result(set_regid(ids, caller.id(0), caller.id(1)));
                case SYS_setresuid: return result(set_resuid(ids, caller.id(0), caller.id(1), caller.id(2)));
                case SYS_setresgid: return result(set_resgid(ids, caller.id(0), caller.id(1), caller.id(2)));
                case SYS_setfsuid: return value(set_fsuid(ids, caller.id(0)));
                case SYS_setfsgid: return value(set_fsgid(ids, caller.id(0)));
                case SYS_setgroups: return change_groups(caller, ids);
                default: return proceed();
            }
        }
        switch (number) {
#ifdef SYS_chown
            case SYS_chown: return change_owner(caller, AT_FDCWD, caller.arg(0), caller.id(1), caller.id(2), 0);
            case SYS_lchown:
                return change_owner(caller, AT_FDCWD, caller.arg(0), caller.id(1), caller.id(2), AT_SYMLINK_NOFOLLOW);
#endif
            case SYS_fchown: return change_owner(caller, caller.fd(0), 0, caller.id(1), caller.id(2), AT_EMPTY_PATH);
            case SYS_fchownat:
                return change_owner(caller, caller.fd(0), caller.arg(1), caller.id(2), caller.id(3),
                                    static_cast<int>(caller.arg(4)));
#ifdef SYS_mkdir
            case SYS_mkdir: return make_directory(caller, ids, AT_FDCWD, caller.arg(0), static_cast<mode_t>(caller.arg(1)));
#endif
            case SYS_mkdirat:
                return make_directory(caller, ids, caller.fd(0), caller.arg(1), static_cast<mode_t>(caller.arg(2)));
#ifdef SYS_open
            case SYS_open:
                return create_file(caller, ids, AT_FDCWD, caller.arg(0), caller.arg(1), static_cast<mode_t>(caller.arg(2)));
#endif
#ifdef SYS_creat
            case SYS_creat:
                return create_file(caller, ids, AT_FDCWD, caller.arg(0), O_CREAT | O_WRONLY | O_TRUNC,
                                   static_cast<mode_t>(caller.arg(1)));
#endif
            case SYS_openat:
                return create_file(caller, ids, caller.fd(0), caller.arg(1), caller.arg(2),
                                   static_cast<mode_t>(caller.arg(3)));
            case SYS_openat2: return open_with_how(caller, ids);
#ifdef SYS_stat
            case SYS_stat: return report_owner(caller, AT_FDCWD, caller.arg(0), caller.arg(1), 0);
            case SYS_lstat: return report_owner(caller, AT_FDCWD, caller.arg(0), caller.arg(1), AT_SYMLINK_NOFOLLOW);
#endif
#ifdef SYS_fstat
            case SYS_fstat: return report_owner(caller, caller.fd(0), 0, caller.arg(1), AT_EMPTY_PATH);
#endif
            case SYS_newfstatat:
                return report_owner(caller, caller.fd(0), caller.arg(1), caller.arg(2), static_cast<int>(caller.arg(3)));
            case SYS_statx:
                return report_owner(caller, caller.fd(0), caller.arg(1), caller.arg(4), static_cast<int>(caller.arg(2)),
                                    static_cast<unsigned>(caller.arg(3)));
            default: return proceed();
        }
    }

    static bool is_id_change(long number) {
        switch (number) {
            case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
            case SYS_setresgid: case SYS_setfsuid: case SYS_setfsgid: case SYS_setgroups:
                return true;
            default:
                return false;
        }
    }

    // --- ids ---

    // The ids of the calling thread: recorded, or those of the nearest ancestor (its thread group, then its
    // parent, and so on) that has some, which it inherited when it was made.
    PretendedIds& ids_of(const Caller& caller) {
        std::uint64_t start = proc_start_time(caller.proc.get());
        if (auto found = m_threads.find(caller.pid); found != m_threads.end()) {
            if (found->second.start == start) return found->second.ids;
            m_threads.erase(found);  // an ended thread's number, now another's
        }
        PretendedIds inherited;
        std::optional<std::string> status = read_proc_file(caller.proc.get(), "status");
        for (int depth = 0; status && depth < k_max_ancestors; ++depth) {
            std::optional<pid_t> at = status_pid(*status, "Pid");
            std::optional<pid_t> group = status_pid(*status, "Tgid");
            std::optional<pid_t> next = group && group != at ? group : status_pid(*status, "PPid");
            if (!next || *next <= 0 || *next == m_own_pid) break;
            if (PretendedIds* known = find_live(*next)) {
                inherited = *known;
                break;
            }
            UniqueFd proc = open_proc(*next);
            status = proc ? read_proc_file(proc.get(), "status") : std::nullopt;
        }
        return record(caller.pid, std::move(inherited), start);
    }

    PretendedIds& record(pid_t tid, PretendedIds ids, std::uint64_t start) {
        if (m_threads.size() >= m_prune_at || m_group_bytes >= m_group_bytes_at) prune();
        return m_threads.insert_or_assign(tid, Thread{std::move(ids), start}).first->second.ids;
    }

    // The recorded ids of `tid`, unless that thread has ended and its number now names another.
    PretendedIds* find_live(pid_t tid) {
        auto found = m_threads.find(tid);
        if (found == m_threads.end()) return nullptr;
        if (found->second.start != proc_start_time_of(tid)) {
            m_threads.erase(found);
            return nullptr;
        }
        return &found->second.ids;
    }

    // Records the caller's children (of all its threads) that no call has shown yet, with its present ids.
    void adopt_children(const Caller& caller, const PretendedIds& ids) {
        UniqueFd tasks(::openat(caller.proc.get(), "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!tasks) return;
        auto names = list_directory(tasks.get(), "task");
        if (!names) return;
        for (const std::string& task : *names) {
            std::optional<std::string> children = read_proc_file(tasks.get(), str_cat(task, "/children").c_str());
            if (!children) continue;
            for (const std::string& word : split(*children, ' ')) {
                std::uint64_t child = 0;
                if (!parse_uint64(word, child) || m_threads.contains(static_cast<pid_t>(child))) continue;
                std::uint64_t start = proc_start_time_of(static_cast<pid_t>(child));
                if (start != 0) record(static_cast<pid_t>(child), ids, start);
            }
        }
    }

    size_t group_bytes() const {
        size_t bytes = 0;
        const std::vector<gid_t>* last = nullptr;
        for (const auto& [tid, thread] : m_threads) {
            const std::vector<gid_t>* groups = thread.ids.groups.get();
            if (groups && groups != last) bytes += groups->size() * sizeof(gid_t);
            last = groups;
        }
        return bytes;
    }

    // Forgets the threads that have ended, so that a step that makes many processes costs no more memory than
    // those alive at once.
    void prune() {
        std::erase_if(m_threads, [](const auto& entry) { return entry.second.start != proc_start_time_of(entry.first); });
        m_prune_at = std::max<size_t>(k_prune_floor, 2 * m_threads.size());
        m_group_bytes = group_bytes();
        m_group_bytes_at = std::max<size_t>(k_group_bytes_floor, 2 * m_group_bytes);
    }

    static Answer write_three(const Caller& caller, std::uint32_t a, std::uint32_t b, std::uint32_t c) {
        const std::uint32_t ids[3] = {a, b, c};
        for (int i = 0; i < 3; ++i)
            if (!caller.write(caller.arg(i), &ids[i], sizeof ids[i])) return error(EFAULT);
        return value(0);
    }

    static Answer get_groups(const Caller& caller, const PretendedIds& ids) {
        auto size = static_cast<std::int32_t>(caller.arg(0));
        size_t count = ids.group_count();
        if (size < 0) return error(EINVAL);
        if (size == 0) return value(static_cast<std::int64_t>(count));
        if (static_cast<size_t>(size) < count) return error(EINVAL);
        if (count > 0 && !caller.write(caller.arg(1), ids.groups->data(), count * sizeof(gid_t))) return error(EFAULT);
        return value(static_cast<std::int64_t>(count));
    }

    Answer change_groups(const Caller& caller, PretendedIds& ids) {
        auto size = static_cast<std::int32_t>(caller.arg(0));
        if (size < 0 || static_cast<size_t>(size) > k_max_groups) return error(EINVAL);
        if (ids.euid != 0) return error(EPERM);
        std::vector<gid_t> groups(static_cast<size_t>(size));
        if (size > 0 && !caller.read(caller.arg(1), groups.data(), groups.size() * sizeof(gid_t))) return error(EFAULT);
        int failed = set_groups(ids, std::move(groups));
        // Counted as they come, so that recording a thread need not add up every list (prune() recounts).
        if (failed == 0) m_group_bytes += ids.group_count() * sizeof(gid_t);
        return result(failed);
    }

    // --- files ---

    // chown, lchown, fchown and fchownat: the owner is recorded as the file's override, or the override
    // removed where it becomes the namespace's own 0:0. As lenient as fakeroot: any pretended user may.
    static Answer change_owner(const Caller& caller, int dirfd, std::uint64_t path_address, std::uint32_t uid,
                               std::uint32_t gid, int flags) {
        std::string path;
        if (path_address != 0 || !(flags & AT_EMPTY_PATH)) {
            auto read = caller.read_path(path_address);
            if (!read) return error(errno_of(read.error()));
            path = std::move(*read);
        }
        if (path.empty() && !(flags & AT_EMPTY_PATH)) return error(ENOENT);
        Result<UniqueFd> file = path.empty() ? caller.open_descriptor(dirfd)
                                             : caller.open_in_root(dirfd, path,
                                                                   O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (!file) return error(errno_of(file.error()));
        struct stat st {};
        if (::fstat(file->get(), &st) != 0) return error(errno);
        if (uid == k_unchanged_id && gid == k_unchanged_id) return value(0);
        std::optional<OverrideStat> recorded = read_override_stat(file->get(), nullptr);
        std::uint32_t new_uid = uid != k_unchanged_id ? uid : recorded ? recorded->uid : st.st_uid;
        std::uint32_t new_gid = gid != k_unchanged_id ? gid : recorded ? recorded->gid : st.st_gid;
        if (new_uid == st.st_uid && new_gid == st.st_gid)
            remove_override_stat(file->get(), nullptr);
        else
            (void)write_override_stat(file->get(), nullptr, {new_uid, new_gid, st.st_mode});  // none on symlinks
        // As the kernel's chown: a regular file loses its setuid bit, and its setgid bit when group-executable.
        mode_t cleared = st.st_mode & 07777 & ~static_cast<mode_t>(S_ISUID);
        if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) cleared &= ~static_cast<mode_t>(S_ISGID);
        // Through the descriptor kiln holds (its /proc/self/fd link), never by name: the file cannot be swapped.
        if (S_ISREG(st.st_mode) && cleared != (st.st_mode & 07777))
            ::chmod(str_cat("/proc/self/fd/", file->get()).c_str(), cleared);
        return value(0);
    }

    // stat and its kin (statx when `statx_mask` is set) of a file whose owner is recorded: the recorded owner,
    // as tools that compare the owner they set with the one they read (shadow's useradd copies /etc/shadow's)
    // expect. Anything else, or a path this cannot follow as the kernel does (a magic link under /proc), the
    // kernel answers itself.
    static Answer report_owner(const Caller& caller, int dirfd, std::uint64_t path_address, std::uint64_t out,
                               int flags, std::optional<unsigned> statx_mask = std::nullopt) {
        std::string path;
        if (path_address != 0) {
            auto read = caller.read_path(path_address);
            if (!read) return proceed();
            path = std::move(*read);
        }
        if (path.empty() && !(flags & AT_EMPTY_PATH)) return proceed();
        Result<UniqueFd> file = path.empty() ? caller.open_descriptor(dirfd)
                                             : caller.open_in_root(dirfd, path,
                                                                   O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (!file) return proceed();
        std::optional<OverrideStat> recorded = read_override_stat(file->get(), nullptr);
        if (!recorded) return proceed();
        if (statx_mask) {
            struct statx answer {};
            if (::statx(file->get(), "", AT_EMPTY_PATH | (flags & AT_STATX_SYNC_TYPE), *statx_mask, &answer) != 0 ||
                !override_applies(*recorded, answer.stx_mode))
                return proceed();
            answer.stx_uid = recorded->uid;
            answer.stx_gid = recorded->gid;
            return caller.write(out, &answer, sizeof answer) ? value(0) : error(EFAULT);
        }
        struct stat answer {};
        if (::fstat(file->get(), &answer) != 0 || !override_applies(*recorded, answer.st_mode)) return proceed();
        answer.st_uid = recorded->uid;
        answer.st_gid = recorded->gid;
        return caller.write(out, &answer, sizeof answer) ? value(0) : error(EFAULT);
    }

    // mkdir and mkdirat by a thread with other filesystem ids than 0: made here, with those ids recorded (the
    // group of a setgid parent, which the directory inherits with its setgid bit, as the kernel does).
    static Answer make_directory(const Caller& caller, const PretendedIds& ids, int dirfd, std::uint64_t path_address,
                                 mode_t mode) {
        if (ids.fsuid == 0 && ids.fsgid == 0) return proceed();
        auto path = caller.read_path(path_address);
        if (!path) return error(errno_of(path.error()));
        std::string trimmed = *path;
        while (trimmed.size() > 1 && trimmed.ends_with('/')) trimmed.pop_back();
        size_t slash = trimmed.rfind('/');
        std::string name = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
        std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : trimmed.substr(0, slash);
        if (name.empty() || name == "." || name == ".." || name == "/") return proceed();
        std::optional<mode_t> umask = caller.umask();
        if (!umask) return proceed();
        auto directory = caller.open_in_root(dirfd, parent, O_PATH | O_DIRECTORY, 0);
        if (!directory) return error(errno_of(directory.error()));
        struct stat parent_stat {};
        if (::fstat(directory->get(), &parent_stat) != 0) return error(errno);
        if (::mkdirat(directory->get(), name.c_str(), 0700) != 0) return error(errno);
        // Opened, never followed: a symlink swapped in for the new directory is refused.
        UniqueFd made(::openat(directory->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made) return value(0);
        std::uint32_t gid = ids.fsgid;
        mode_t permissions = mode & 01777 & ~*umask;
        if (parent_stat.st_mode & S_ISGID) {
            std::optional<OverrideStat> parent_owner = read_override_stat(directory->get(), nullptr);
            gid = parent_owner ? parent_owner->gid : parent_stat.st_gid;
            permissions |= S_ISGID;
        }
        ::fchmod(made.get(), permissions);
        (void)write_override_stat(made.get(), nullptr, {ids.fsuid, gid, S_IFDIR | permissions});
        return value(0);
    }

    Answer open_with_how(const Caller& caller, const PretendedIds& ids) {
        open_how how{};
        if (caller.arg(3) != sizeof how || !caller.read(caller.arg(2), &how, sizeof how) || how.resolve != 0)
            return proceed();
        return create_file(caller, ids, caller.fd(0), caller.arg(1), how.flags, static_cast<mode_t>(how.mode));
    }

    // open, creat, openat and openat2 with O_CREAT by a thread with other filesystem ids than 0, of a file that
    // does not exist yet: made here with O_EXCL, its owner recorded (a setgid parent's group, as the kernel
    // gives it), and the descriptor installed in the caller as the call's result. A file that exists the
    // kernel opens itself, in the caller's context.
    Answer create_file(const Caller& caller, const PretendedIds& ids, int dirfd, std::uint64_t path_address,
                       std::uint64_t flags, mode_t mode) {
        if (!(flags & O_CREAT) || (flags & O_PATH) || (ids.fsuid == 0 && ids.fsgid == 0)) return proceed();
        auto path = caller.read_path(path_address);
        if (!path) return error(errno_of(path.error()));
        std::optional<mode_t> umask = caller.umask();
        if (!umask) return proceed();
        constexpr std::uint64_t known = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                                        O_DSYNC | O_SYNC | O_DIRECT | O_NOFOLLOW | O_NOATIME | O_CLOEXEC |
                                        0100000 /* O_LARGEFILE, as the kernel has it */;
        std::uint64_t wanted = (flags & known & ~static_cast<std::uint64_t>(O_CLOEXEC)) | O_EXCL;
        mode_t permissions = mode & 07777 & ~*umask;
        auto file = caller.open_in_root(dirfd, *path, wanted, permissions);
        if (!file && errno_of(file.error()) == EEXIST && !(flags & O_EXCL)) return proceed();
        if (!file) return error(errno_of(file.error()));
        std::uint32_t gid = caller.setgid_parent_group(dirfd, *path).value_or(ids.fsgid);
        ::fchmod(file->get(), permissions);  // kiln's umask may be stricter than the caller's
        (void)write_override_stat(file->get(), nullptr, {ids.fsuid, gid, S_IFREG | permissions});
        seccomp_notif_addfd addfd{};
        addfd.id = caller.request.id;
        addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
        addfd.srcfd = static_cast<std::uint32_t>(file->get());
        addfd.newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0;
        if (::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0 || errno == ENOENT) return done();
        return error(errno);
    }

    bool still_valid(const seccomp_notif& request) const {
        std::uint64_t id = request.id;
        return ::ioctl(m_listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
    }

    void note_failure(const char* what, int err) {
        if (m_failed) return;
        m_failed = true;
        log_warn("the RUN's ownership supervisor could not ", what, " a reply: ", std::strerror(err));
    }

    struct Thread {
        PretendedIds ids;
        std::uint64_t start = 0;  // proc_start_time(), which tells it from a later thread with its number
    };

    int m_listener;
    pid_t m_own_pid;
    std::unordered_map<pid_t, Thread> m_threads;
    size_t m_prune_at = k_prune_floor;
    size_t m_group_bytes = 0;  // of the group lists set since the last prune(), and those it kept
    size_t m_group_bytes_at = k_group_bytes_floor;
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
    char tag = 0;
    ReceivedMessage received = receive_descriptor(m_socket.get(), &tag, 1);
    // One message, from the step's first process: the socket takes no more.
    m_socket.reset();
    if (received.size != 1 || tag != 's' || !received.fd) return;
    Server server(received.fd.get());
    while (wait_readable(received.fd.get(), m_stop_event.get()))
        if (!server.answer_one()) break;
}

}  // namespace kiln
