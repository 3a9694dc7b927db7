#pragma once
// An attached mount, detached (umount2 MNT_DETACH) when the guard goes out of scope, on every path.

#include <string>

#include "common/error.hpp"

namespace kiln {

class MountGuard {
public:
    MountGuard() = default;
    // Takes charge of the mount at `target`, which the caller has just attached.
    explicit MountGuard(std::string target) : m_target(std::move(target)) {}
    MountGuard(MountGuard&& other) noexcept;
    MountGuard& operator=(MountGuard&& other) noexcept;
    MountGuard(const MountGuard&) = delete;
    MountGuard& operator=(const MountGuard&) = delete;
    ~MountGuard();

    const std::string& target() const { return m_target; }
    bool active() const { return !m_target.empty(); }
    // Detaches the mount now, reporting a failure that the destructor could only log.
    Status unmount();
    // Leaves the mount attached and returns its target: someone else unmounts it.
    std::string release();

private:
    std::string m_target;
};

}  // namespace kiln
