#pragma once
// The ids a thread of a RUN step pretends to have under the ownership supervisor (ownership_supervisor.hpp), and
// the kernel's rules for changing them (credentials(7)): a thread whose effective uid is 0 (which holds
// CAP_SETUID and CAP_SETGID) may take any id; another may only move among its real, effective and saved ids.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace kiln {

// (uid_t)-1: "leave it unchanged", to set*id and chown.
inline constexpr std::uint32_t k_unchanged_id = 0xffffffff;

struct PretendedIds {
    std::uint32_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
    std::uint32_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
    // Supplementary groups; shared between the threads and processes that inherited the same list.
    std::shared_ptr<const std::vector<gid_t>> groups;

    size_t group_count() const { return groups ? groups->size() : 0; }
};

// Each returns 0 or the errno the kernel would give, and changes `ids` only on success.
int set_uid(PretendedIds& ids, std::uint32_t uid);                                      // setuid(2)
int set_gid(PretendedIds& ids, std::uint32_t gid);                                      // setgid(2)
int set_reuid(PretendedIds& ids, std::uint32_t real, std::uint32_t effective);          // setreuid(2)
int set_regid(PretendedIds& ids, std::uint32_t real, std::uint32_t effective);          // setregid(2)
int set_resuid(PretendedIds& ids, std::uint32_t real, std::uint32_t effective, std::uint32_t saved);
int set_resgid(PretendedIds& ids, std::uint32_t real, std::uint32_t effective, std::uint32_t saved);
int set_groups(PretendedIds& ids, std::vector<gid_t> groups);                           // setgroups(2)
// setfsuid(2) and setfsgid(2) return the previous id, whether or not they change it.
std::uint32_t set_fsuid(PretendedIds& ids, std::uint32_t uid);
std::uint32_t set_fsgid(PretendedIds& ids, std::uint32_t gid);

}  // namespace kiln
