#pragma once
// A build's private directory, <parent>/kiln-build-XXXXXX: everything a build writes that is not a result lives
// there (the store, extracted layers, downloads). It holds a lock for as long as its kiln lives, so that a
// later kiln can tell a directory a dead kiln left (its lock free, its pid gone) from one in use. A directory is
// removed without holding kiln's exit: it is renamed to <parent>/kiln-trash-XXXXXX, at once, and a detached
// `kiln` process deletes it (an extracted Debian rootfs took up to 155 s to delete on a busy node).

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

// How a WorkDir is removed: by a detached process, without holding kiln's exit (the default), or before kiln
// goes on (--cleanup: a pod's volume is empty when the step ends, whatever happens to the processes it leaves).
enum class WorkDirRemoval { background, before_returning };

// The hidden command of the detached process: `kiln internal-remove-work-dir PATH`.
inline constexpr const char* k_remove_work_dir_command = "internal-remove-work-dir";

class WorkDir {
public:
    // Creates and locks a new directory in `parent`.
    static Result<WorkDir> create(const std::string& parent);
    WorkDir() = default;
    WorkDir(WorkDir&& other) noexcept;
    WorkDir& operator=(WorkDir&& other) noexcept;
    WorkDir(const WorkDir&) = delete;
    WorkDir& operator=(const WorkDir&) = delete;
    // Disposes of the directory (see dispose()).
    ~WorkDir();

    const std::string& path() const { return m_path; }
    // How dispose() removes the directory.
    void set_removal(WorkDirRemoval removal) { m_removal = removal; }
    // Moves the directory out of the way and has it deleted in the background, returning at once; or deletes
    // it, mounts below it detached, before returning (WorkDirRemoval::before_returning).
    void dispose();
    // Keeps the directory; returns its path.
    std::string release();

private:
    WorkDir(std::string path, UniqueFd lock) : m_path(std::move(path)), m_lock(std::move(lock)) {}
    std::string m_path;
    UniqueFd m_lock;
    WorkDirRemoval m_removal = WorkDirRemoval::background;
};

// Renames `path` to a kiln-trash-* name beside it and starts a detached kiln that deletes it (its stdio on
// /dev/null, in a session of its own); deletes it here if that cannot start. Safe to call from any thread,
// for a directory other threads may still be writing to.
void dispose_directory(const std::string& path);

// The directories of every WorkDir alive in this process, which their WorkDirs will then leave alone: for a
// cancelled kiln to dispose of before it exits.
std::vector<std::string> take_live_work_dirs();

// Removes, in the background, what dead kilns left in `parent`: kiln-build-* directories whose lock is free and
// whose kiln's pid is gone, and kiln-trash-* directories no deleting process holds. One log line each.
void sweep_stale_work_dirs(const std::string& parent);

// The detached process's work: takes the directory's lock, detaches the mounts below it (kiln's, in the mount
// namespace it inherited), and deletes it without crossing into another file system. Returns the exit code.
int remove_disposed_work_dir(const std::string& path);

}  // namespace kiln
