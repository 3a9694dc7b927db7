#pragma once
// The directories behind RUN --mount=type=cache: kept across builds under the cache directory, one per cache
// id, shared between concurrent builds as the mount's `sharing` says (flock on a lock file beside each one).
// Files keep the ids the RUN gave them, like a rootfs, and never reach a layer.

#include <sys/types.h>

#include <optional>
#include <string>

#include "builder/run/run_mount_spec.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/temp_dir.hpp"

namespace kiln {

struct CacheMountSettings {
    std::string id;
    CacheSharing sharing = CacheSharing::shared;
    // Applied when the directory is created; an existing cache keeps what it has.
    mode_t mode = 0755;
    uid_t uid = 0;
    gid_t gid = 0;
    // When set, a new cache starts as a copy of `seed_path` inside the directory `seed_root` (`from=`).
    std::string seed_root;
    std::string seed_path;
};

// A cache directory held for one RUN step: the lock its sharing mode takes is released, and a private
// stand-in removed, when it is destroyed.
class CacheMountLease {
public:
    CacheMountLease(CacheMountLease&&) noexcept = default;
    CacheMountLease& operator=(CacheMountLease&&) noexcept = default;

    // The directory to mount.
    const std::string& directory() const { return m_directory; }

private:
    friend Result<CacheMountLease> acquire_cache_mount(const std::string&, const CacheMountSettings&);
    CacheMountLease() = default;
    std::string m_directory;
    UniqueFd m_lock;
    std::optional<TempDir> m_stand_in;
};

// The cache `settings.id` under `cache_root`, created (and seeded) on first use. "locked" waits for every
// other user to finish; "shared" waits only for a "locked" one; "private" gets a fresh directory, removed
// afterwards, while the cache is in use.
Result<CacheMountLease> acquire_cache_mount(const std::string& cache_root,
                                            const CacheMountSettings& settings);

}  // namespace kiln
