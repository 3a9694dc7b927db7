#pragma once
// How much memory a build may use for files (--memory-budget): extracted layers go to a tmpfs of that size,
// and to the disk past it. A tmpfs's pages count against the pod's memory cgroup, so the default is a
// fraction of what the cgroup still allows (memory.max minus memory.current), or of MemAvailable outside one:
// kiln's tmpfs never pushes a pod past its limit.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace kiln {

// --memory-budget: "auto" (nullopt), "0" (off), or a size as parse_byte_size reads it (2Gi, 512M).
Result<std::optional<std::uint64_t>> parse_memory_budget(std::string_view text);

// What "auto" means here: half of what the memory cgroup of this process still allows (read below
// `cgroup_root`, normally /sys/fs/cgroup, for the cgroup /proc/self/cgroup names: v2's memory.max and
// memory.current, or v1's memory controller's limit_in_bytes and usage_in_bytes), at most half of MemAvailable
// from `meminfo`. Zero when neither can be read.
std::uint64_t automatic_memory_budget(const std::string& cgroup_root = "/sys/fs/cgroup",
                                      const std::string& self_cgroup = "/proc/self/cgroup",
                                      const std::string& meminfo = "/proc/meminfo");

}  // namespace kiln
