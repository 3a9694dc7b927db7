#include "builder/run/cache_mounts.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "builder/sources/copy_files.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

// Makes `<dir>/data` as the settings ask: seeded from `from=` if any, then given its mode and owner.
Status make_data_directory(const std::string& dir, const CacheMountSettings& settings) {
    std::string data = dir + "/data";
    if (::mkdir(data.c_str(), 0700) != 0) return fail_errno(str_cat("mkdir ", data));
    if (!settings.seed_root.empty()) {
        KILN_ASSIGN(RootFs from, RootFs::open(settings.seed_root));
        KILN_ASSIGN(RootFs to, RootFs::open(data));
        std::vector<std::string> written;
        KILN_TRY_CONTEXT(copy_path(from, settings.seed_path, to, "", CopyOptions{}, written),
                         str_cat("seeding the cache ", settings.id));
    }
    if (::chown(data.c_str(), settings.uid, settings.gid) != 0)
        return fail_errno(str_cat("chown ", settings.uid, ":", settings.gid, " ", data));
    if (::chmod(data.c_str(), settings.mode) != 0) return fail_errno(str_cat("chmod ", data));
    return {};
}

// The cache's directory, made under a temporary name and renamed into place, so that a concurrent build sees
// either nothing or a finished one.
Status ensure_cache_directory(const std::string& parent, const std::string& name,
                              const CacheMountSettings& settings) {
    std::string dir = parent + "/" + name;
    if (path_exists(dir + "/data")) return {};
    KILN_ASSIGN(TempDir fresh, TempDir::create(parent, name + ".new-"));
    KILN_TRY(make_data_directory(fresh.path(), settings));
    KILN_TRY(write_file_atomic(fresh.path() + "/id", settings.id + "\n", 0600));
    if (::rename(fresh.path().c_str(), dir.c_str()) == 0) {
        fresh.release();
        return {};
    }
    if (errno == EEXIST || errno == ENOTEMPTY) return {};  // another build made it first
    return fail_errno(str_cat("rename ", fresh.path(), " to ", dir));
}

int lock_operation(CacheSharing sharing) {
    switch (sharing) {
        case CacheSharing::shared:
            return LOCK_SH;
        case CacheSharing::locked:
            return LOCK_EX;
        case CacheSharing::unshared:
            return LOCK_EX | LOCK_NB;
    }
    return LOCK_SH;
}

}  // namespace

Result<CacheMountLease> acquire_cache_mount(const std::string& cache_root,
                                            const CacheMountSettings& settings) {
    std::string parent = cache_root + "/run-mounts";
    KILN_TRY(make_directories(parent, 0700));
    std::string name = sha256_hex(settings.id);
    KILN_TRY_CONTEXT(ensure_cache_directory(parent, name, settings),
                     str_cat("creating the cache ", settings.id));

    CacheMountLease lease;
    std::string lock_path = str_cat(parent, "/", name, "/lock");
    lease.m_lock = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lease.m_lock) return fail_errno(str_cat("open ", lock_path));
    int operation = lock_operation(settings.sharing);
    while (::flock(lease.m_lock.get(), operation) != 0) {
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return fail_errno(str_cat("flock ", lock_path));
        // "private" and the cache is busy: this step gets a fresh directory of its own, dropped afterwards.
        log_info("cache ", settings.id, " is in use: this step gets a private, empty one");
        lease.m_lock.reset();
        KILN_ASSIGN(TempDir stand_in, TempDir::create(parent, name + ".private-"));
        KILN_TRY(make_data_directory(stand_in.path(), settings));
        lease.m_directory = stand_in.path() + "/data";
        lease.m_stand_in = std::move(stand_in);
        return lease;
    }
    lease.m_directory = str_cat(parent, "/", name, "/data");
    return lease;
}

}  // namespace kiln
