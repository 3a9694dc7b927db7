#pragma once
// Whole-file reads and atomic publication of files.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/stream.hpp"

namespace kiln {

// Reads a file, refusing anything larger than `limit` bytes.
Result<std::string> read_file(const std::string& path, size_t limit = 64 << 20);

// A name that no other process or thread picks: 16 random hex digits. Process ids are no help, since every pod
// that shares a volume runs as pid 1.
std::string unique_name_suffix();

// A file written beside its target and renamed into place by commit(); destroyed uncommitted, it is discarded.
// Until then it holds an flock on its temporary file, so that remove_stale_temp_files() can tell a live writer's
// file from one a killed process left behind.
class AtomicFile {
public:
    static Result<AtomicFile> create(const std::string& path, mode_t mode = 0644);
    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&&) = delete;
    ~AtomicFile();

    Writer& writer() { return m_writer; }
    int fd() const { return m_fd.get(); }
    // Flushes what was written to the disk (fdatasync): call before commit() for a file that must survive a
    // crash whole once it is visible.
    Status sync();
    // Closes the file and renames it over the target. Nothing is fsynced: builds are reproducible, not durable.
    Status commit();
    // As commit(), but publishes under `target` (on the same filesystem) instead.
    Status commit_as(const std::string& target);

private:
    AtomicFile(std::string path, std::string temp_path, UniqueFd fd);
    std::string m_path;
    std::string m_temp_path;
    UniqueFd m_fd;
    UniqueFd m_lock;  // a duplicate of m_fd: the flock lasts until the rename, whenever m_fd is closed
    FdWriter m_writer;
    bool m_committed = false;
};

// Removes the files in `dir` whose names start with `prefix`, that no live AtomicFile holds and that are older
// than `min_age`: what writers killed with SIGKILL left behind. A writer locks its file right after creating
// it, and the age guards that moment. Returns how many were removed; a missing directory has none.
Result<size_t> remove_stale_temp_files(const std::string& dir, std::string_view prefix,
                                       std::chrono::seconds min_age = std::chrono::seconds(10));

// Copies everything from `in_fd`'s offset to its end into `out_fd`: copy_file_range where the kernel can
// (reflinks, server-side copies), read and write otherwise, retrying calls a signal interrupted. `display`
// names the destination in errors.
Status copy_file_data(int in_fd, int out_fd, const std::string& display);

// Writes `bytes` to `path` atomically.
Status write_file_atomic(const std::string& path, std::string_view bytes, mode_t mode = 0644);

// Writes a file a user named for a result (--digest-file, --summary-file, …): a new or plain file is replaced
// whole (written aside, then renamed), so that no reader sees half of it; anything else is written through, as
// a shell's redirection would: a symlink, a device or pipe (/dev/termination-log, /dev/stdout), a file mounted
// in place. A directory is an error.
Status write_named_file(const std::string& path, std::string_view bytes);

// As write_file_atomic, durably: the bytes reach the disk before the rename, and the rename before this
// returns, so that after a crash `path` is either the old file or the whole new one.
Status write_file_durable(const std::string& path, std::string_view bytes, mode_t mode = 0644);

// fsyncs the directory `path`, making the names created or renamed in it durable.
Status sync_directory(const std::string& path);

// mkdir -p; existing directories are fine.
Status make_directories(const std::string& path, mode_t mode = 0755);

bool path_exists(const std::string& path);

// The names in the directory `dir_fd` (without "." and ".."), sorted; `display` names it in errors.
Result<std::vector<std::string>> list_directory(int dir_fd, const std::string& display);

// The target of the symlink `name` in `dir_fd`, whatever its length; `display` names it in errors.
Result<std::string> read_link_at(int dir_fd, const std::string& name, const std::string& display);

// Every extended attribute (name, value) of the file open as `fd`, or with `fd` < 0 of `path` (not followed;
// "/proc/self/fd/N/leaf" reaches a file without an fd of its own), in the order the filesystem lists them.
// A filesystem without extended attributes has none, and an attribute that cannot be read (removed since it
// was listed, or not readable by this process) is left out; failing to list them is an error with its errno.
Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(int fd, const std::string& path);

// The directory of `path` ("a/b" for "a/b/c", "." for "c").
std::string parent_path(std::string_view path);
// The last component of `path` ("c" for "a/b/c" and "a/b/c/"; "" for "/").
std::string file_name(std::string_view path);

// `name` below the relative directory `dir`: "dir/name", or `name` itself when `dir` is "" (the root).
std::string join_path(std::string_view dir, std::string_view name);

}  // namespace kiln
