#pragma once
// Tests that mount things do it in a child process with a mount namespace of its own, so that nothing they
// mount can outlive them or show on the host.

#include <functional>
#include <string>

namespace kiln::test {

// Runs `body` in a forked child that has a private mount namespace; the child's exit code, 77 when the
// namespace is refused (no root), -1 when the child died.
int in_private_mount_namespace(const std::function<int()>& body);

// How many mount points of this process stand at `path` or below it.
size_t mounts_at_or_below(const std::string& path);

}  // namespace kiln::test
