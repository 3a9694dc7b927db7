#include "builder/work_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

constexpr const char* k_build_prefix = "kiln-build-";
constexpr const char* k_trash_prefix = "kiln-trash-";
constexpr const char* k_lock_name = "kiln.lock";

// The lock of `dir`, taken without waiting: an fd, or an invalid one when it is missing or held.
UniqueFd lock_without_waiting(const std::string& dir, bool& missing) {
    UniqueFd lock(::open(str_cat(dir, "/", k_lock_name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    missing = !lock && errno == ENOENT;
    if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return UniqueFd();
    return lock;
}

// The pid a lock file records, or 0.
pid_t recorded_pid(const std::string& dir) {
    auto text = read_file(str_cat(dir, "/", k_lock_name), 64);
    std::uint64_t pid = 0;
    if (!text || !parse_uint64(trim(*text), pid) || pid == 0 || pid > (1u << 22)) return 0;
    return static_cast<pid_t>(pid);
}

bool process_exists(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// Starts `kiln internal-remove-work-dir path`, detached: a session of its own, stdio on /dev/null (a caller
// collecting kiln's output must not wait for it), default signal handling. False if it could not start.
bool spawn_remover(const std::string& path) {
    return spawn_child({"kiln", k_remove_work_dir_command, path},
                       {.path = "/proc/self/exe", .new_session = true, .default_signals = true})
        .has_value();
}

// A mountinfo path field, whose space, tab, newline and backslash the kernel writes as \ooo octal escapes.
std::string unescape_mountinfo(std::string_view field) {
    std::string path;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            int value = 0;
            bool octal = true;
            for (size_t j = 1; j <= 3; ++j) {
                char c = field[i + j];
                octal = octal && c >= '0' && c <= '7';
                value = value * 8 + (c - '0');
            }
            if (octal) {
                path.push_back(static_cast<char>(value));
                i += 3;
                continue;
            }
        }
        path.push_back(field[i]);
    }
    return path;
}

// Detaches every mount at or below `path` that this mount namespace shows, deepest first.
void detach_mounts_below(const std::string& path) {
    auto mountinfo = read_file("/proc/self/mountinfo", 16 << 20);
    if (!mountinfo) return;
    std::vector<std::string> targets;
    for (const std::string& line : split(*mountinfo, '\n')) {
        std::vector<std::string> fields = split(line, ' ');
        if (fields.size() < 5) continue;
        std::string target = unescape_mountinfo(fields[4]);
        if (target == path || target.starts_with(path + "/")) targets.push_back(std::move(target));
    }
    std::sort(targets.begin(), targets.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& target : targets) ::umount2(target.c_str(), MNT_DETACH);
}

// The directories of the live WorkDirs; whoever takes one out disposes of it.
struct LiveDirs {
    std::mutex mutex;
    std::vector<std::string> paths;
};

LiveDirs& live_dirs() {
    static LiveDirs* instance = new LiveDirs();  // never destroyed: a cancelling thread may use it at any time
    return *instance;
}

bool take_live(const std::string& path) {
    LiveDirs& live = live_dirs();
    std::lock_guard lock(live.mutex);
    auto found = std::find(live.paths.begin(), live.paths.end(), path);
    if (found == live.paths.end()) return false;
    live.paths.erase(found);
    return true;
}

}  // namespace

std::vector<std::string> take_live_work_dirs() {
    LiveDirs& live = live_dirs();
    std::lock_guard lock(live.mutex);
    return std::exchange(live.paths, {});
}

Result<WorkDir> WorkDir::create(const std::string& parent) {
    // Held from the directory's creation to its registration, so that a cancellation cannot miss it.
    LiveDirs& live = live_dirs();
    std::lock_guard guard(live.mutex);
    KILN_ASSIGN(TempDir made, TempDir::create(parent, k_build_prefix));
    std::string lock_path = str_cat(made.path(), "/", k_lock_name);
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!lock) return fail_errno(str_cat("create ", lock_path));
    if (::flock(lock.get(), LOCK_EX) != 0) return fail_errno(str_cat("flock ", lock_path));
    std::string pid = str_cat(::getpid(), "\n");
    if (::write(lock.get(), pid.data(), pid.size()) != static_cast<ssize_t>(pid.size()))
        return fail_errno(str_cat("write ", lock_path));
    live.paths.push_back(made.path());
    return WorkDir(made.release(), std::move(lock));
}

WorkDir::WorkDir(WorkDir&& other) noexcept
    : m_path(std::exchange(other.m_path, {})), m_lock(std::move(other.m_lock)), m_removal(other.m_removal) {}

WorkDir& WorkDir::operator=(WorkDir&& other) noexcept {
    if (this != &other) {
        dispose();
        m_path = std::exchange(other.m_path, {});
        m_lock = std::move(other.m_lock);
        m_removal = other.m_removal;
    }
    return *this;
}

WorkDir::~WorkDir() { dispose(); }

void WorkDir::dispose() {
    if (m_path.empty()) return;
    // Released first: the remover waits for it.
    m_lock.reset();
    std::string path = std::exchange(m_path, {});
    if (!take_live(path)) return;  // a cancellation has it
    if (m_removal == WorkDirRemoval::background) return dispose_directory(path);
    auto start = std::chrono::steady_clock::now();
    detach_mounts_below(path);
    if (auto removed = remove_tree(path, true, k_lock_name); !removed)
        log_warn("could not remove the work directory: ", removed.error().message());
    else
        log_info("removed the work directory ", path, " in ", format_seconds(seconds_since(start), 2), " s (--cleanup)");
}

std::string WorkDir::release() {
    m_lock.reset();
    take_live(m_path);
    return std::exchange(m_path, {});
}

void dispose_directory(const std::string& path) {
    std::string parent = parent_path(path);
    std::string name = path.substr(parent.size() + (parent == "/" ? 0 : 1));
    std::string suffix = name.starts_with(k_build_prefix) ? name.substr(std::string(k_build_prefix).size()) : name;
    std::string trash = str_cat(parent, "/", k_trash_prefix, suffix);
    std::string doomed = name.starts_with(k_trash_prefix) || ::rename(path.c_str(), trash.c_str()) != 0 ? path : trash;
    if (spawn_remover(doomed)) return;
    if (auto removed = remove_tree(doomed, true, k_lock_name); !removed)
        log_warn("could not remove the work directory: ", removed.error().message());
}

void sweep_stale_work_dirs(const std::string& parent) {
    UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return;
    auto names = list_directory(dir.get(), parent);
    if (!names) return;
    for (const std::string& name : *names) {
        bool trash = name.starts_with(k_trash_prefix);
        if (!trash && !name.starts_with(k_build_prefix)) continue;
        std::string path = str_cat(parent, "/", name);
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
        bool missing = false;
        UniqueFd lock = lock_without_waiting(path, missing);
        // A build directory without a lock is one a kiln is creating, or an older kiln's: left alone. A trash
        // directory's remover removes the lock last, so one without a lock is all but gone.
        if (!lock && !(trash && missing)) continue;
        pid_t pid = recorded_pid(path);
        if (!trash && process_exists(pid)) continue;
        if (trash)
            log_info("removing ", path, ", which a kiln began to delete and did not finish");
        else
            log_info("removing ", path, ", left by kiln (pid ", pid, ") when it ended without removing it");
        lock.reset();
        dispose_directory(path);
    }
}

int remove_disposed_work_dir(const std::string& path) {
    // Waits for the kiln that disposed of the directory to end (a cancelled one holds the lock until it exits),
    // or for another remover to be done.
    UniqueFd lock(::open(str_cat(path, "/", k_lock_name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (lock) ::flock(lock.get(), LOCK_EX);
    detach_mounts_below(path);
    // The lock goes last: while it is there, held, another kiln's sweep sees a removal under way.
    return remove_tree(path, true, k_lock_name) ? 0 : 1;
}

}  // namespace kiln
