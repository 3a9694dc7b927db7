#include "common/mount_guard.hpp"

#include <sys/mount.h>

#include <utility>

#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

MountGuard::MountGuard(MountGuard&& other) noexcept : m_target(std::exchange(other.m_target, {})) {}

MountGuard& MountGuard::operator=(MountGuard&& other) noexcept {
    if (this != &other) {
        if (auto done = unmount(); !done) log_warn(done.error().message());
        m_target = std::exchange(other.m_target, {});
    }
    return *this;
}

MountGuard::~MountGuard() {
    if (auto done = unmount(); !done) log_warn(done.error().message());
}

Status MountGuard::unmount() {
    if (m_target.empty()) return {};
    std::string target = std::exchange(m_target, {});
    if (::umount2(target.c_str(), MNT_DETACH) != 0) return fail_errno(str_cat("umount ", target));
    return {};
}

std::string MountGuard::release() { return std::exchange(m_target, {}); }

}  // namespace kiln
