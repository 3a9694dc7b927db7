#pragma once
// A minimal image for sandbox tests: Debian's static busybox with its applets as symlinks in /bin, a 1777
// /tmp, and nothing else, so that every mount point the sandbox needs is missing and has to be stubbed.

#include <string>

#include "common/error.hpp"

namespace kiln {

inline constexpr const char* k_host_busybox = "/bin/busybox";

// Fills the existing directory `dir` with the image.
Status build_busybox_rootfs(const std::string& dir);

}  // namespace kiln
