#pragma once
// The process behind a seccomp user notification, as the ownership supervisor sees it: the call's arguments,
// its memory, and paths resolved the way the caller would resolve them, inside its own root.

#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

// The process that made a notification, pinned: its /proc directory and memory were opened before the
// notification was checked still valid, so a number reused by another process afterwards reaches neither.
struct Caller {
    const seccomp_notif& request;
    pid_t pid;
    UniqueFd proc;
    UniqueFd memory;

    std::uint64_t arg(int i) const { return request.data.args[i]; }
    std::uint32_t id(int i) const { return static_cast<std::uint32_t>(arg(i)); }
    int fd(int i) const { return static_cast<int>(static_cast<std::int32_t>(arg(i))); }

    // `size` bytes at `address` of the caller's memory; false if any of them is unmapped.
    bool read(std::uint64_t address, void* out, size_t size) const;
    bool write(std::uint64_t address, const void* in, size_t size) const;
    // A NUL-terminated path in the caller's memory, read a page at a time (a later page may be unmapped).
    Result<std::string> read_path(std::uint64_t address) const;
    // The caller's umask, from its status.
    std::optional<mode_t> umask() const;
    // The caller's descriptor `descriptor` (AT_FDCWD: its working directory), reopened O_PATH.
    Result<UniqueFd> open_descriptor(int descriptor) const;
    // `path` as the caller names it from `dirfd` (AT_FDCWD: its working directory): the absolute path in the
    // caller's root. A working directory or dirfd outside that root, or deleted, has no such path.
    Result<std::string> absolute_path(int dirfd, const std::string& path) const;
    // `path` from `dirfd`, opened with `flags` and `mode` in the caller's root, which it cannot leave: "..",
    // absolute paths and symlinks stop there, and magic links are refused.
    Result<UniqueFd> open_in_root(int dirfd, const std::string& path, std::uint64_t flags, mode_t mode) const;
    // The group a new entry in the directory of `path` gets when that directory is setgid: its own.
    std::optional<gid_t> setgid_parent_group(int dirfd, const std::string& path) const;
};

}  // namespace kiln
