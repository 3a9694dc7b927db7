#pragma once
// Mount points that an image lacks (/proc, /dev, /sys, /etc/hosts, /etc/resolv.conf) are created as empty
// stubs before a RUN and removed after it, with their parent directories' timestamps restored, so that a
// snapshot of the rootfs (mode, ids, mtime, inode of each directory) sees no trace of them.

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

enum class StubKind { directory, file };

class MountStubs {
public:
    MountStubs() = default;
    MountStubs(MountStubs&&) noexcept = default;
    MountStubs& operator=(MountStubs&&) = delete;
    MountStubs(const MountStubs&) = delete;
    ~MountStubs();

    // Makes sure `path` exists in `rootfs`, creating it and any missing parent directory as empty stubs (0755
    // directories, 0644 files) through RootFs, so a symlink in the image can only lead to a place inside it.
    // An existing path, whatever its type, is left alone.
    Status ensure(const RootFs& rootfs, std::string_view path, StubKind kind);

    // Removes, newest first, every stub that is still the empty stub it was (same inode, unmodified) and
    // restores its parent's timestamps. A stub the RUN changed is kept: it is now part of the image.
    // Idempotent.
    Status remove();

private:
    struct Stub {
        UniqueFd parent;  // opened when the stub was made, so that removal cannot be redirected either
        std::string name;
        std::string display;
        StubKind kind = StubKind::directory;
        ino_t inode = 0;
        timespec mtime{};         // the stub's own once made (removing the stubs inside restores it)
        timespec parent_atime{};  // the parent's, before the stub existed
        timespec parent_mtime{};
        timespec parent_mtime_after{};  // the parent's, right after the stub was made
    };
    Status remove_one(Stub& stub);

    std::vector<Stub> m_stubs;
};

}  // namespace kiln
