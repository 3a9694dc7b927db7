#include "builder/sandbox/pretended_ids.hpp"

#include <cerrno>
#include <initializer_list>

namespace kiln {
namespace {

bool one_of(std::uint32_t id, std::initializer_list<std::uint32_t> ids) {
    for (std::uint32_t candidate : ids)
        if (candidate == id) return true;
    return false;
}

// setuid(2) and setgid(2) for one kind of id: a privileged caller sets real, effective and saved; another may
// set its effective id to its real or saved one.
int set_one(bool privileged, std::uint32_t id, std::uint32_t& real, std::uint32_t& effective, std::uint32_t& saved,
            std::uint32_t& filesystem) {
    if (privileged) {
        real = effective = saved = id;
    } else if (id == real || id == saved) {
        effective = id;
    } else {
        return EPERM;
    }
    filesystem = effective;
    return 0;
}

// setreuid(2) and setregid(2): the saved id follows the effective one when the real id is set, or the
// effective id set to something else than the old real one.
int set_two(bool privileged, std::uint32_t new_real, std::uint32_t new_effective, std::uint32_t& real,
            std::uint32_t& effective, std::uint32_t& saved, std::uint32_t& filesystem) {
    if (!privileged && ((new_real != k_unchanged_id && !one_of(new_real, {real, effective})) ||
                        (new_effective != k_unchanged_id && !one_of(new_effective, {real, effective, saved}))))
        return EPERM;
    std::uint32_t old_real = real;
    if (new_real != k_unchanged_id) real = new_real;
    if (new_effective != k_unchanged_id) effective = new_effective;
    if (new_real != k_unchanged_id || (new_effective != k_unchanged_id && new_effective != old_real))
        saved = effective;
    filesystem = effective;
    return 0;
}

// setresuid(2) and setresgid(2).
int set_three(bool privileged, std::uint32_t new_real, std::uint32_t new_effective, std::uint32_t new_saved,
              std::uint32_t& real, std::uint32_t& effective, std::uint32_t& saved, std::uint32_t& filesystem) {
    if (!privileged) {
        for (std::uint32_t id : {new_real, new_effective, new_saved})
            if (id != k_unchanged_id && !one_of(id, {real, effective, saved})) return EPERM;
    }
    if (new_real != k_unchanged_id) real = new_real;
    if (new_effective != k_unchanged_id) effective = new_effective;
    if (new_saved != k_unchanged_id) saved = new_saved;
    filesystem = effective;
    return 0;
}

std::uint32_t set_fs(bool privileged, std::uint32_t id, std::uint32_t real, std::uint32_t effective,
                     std::uint32_t saved, std::uint32_t& filesystem) {
    std::uint32_t old = filesystem;
    if (id != k_unchanged_id && (privileged || one_of(id, {real, effective, saved, filesystem}))) filesystem = id;
    return old;
}

}  // namespace

int set_uid(PretendedIds& i, std::uint32_t uid) { return set_one(i.euid == 0, uid, i.ruid, i.euid, i.suid, i.fsuid); }
int set_gid(PretendedIds& i, std::uint32_t gid) { return set_one(i.euid == 0, gid, i.rgid, i.egid, i.sgid, i.fsgid); }

int set_reuid(PretendedIds& i, std::uint32_t real, std::uint32_t effective) {
    return set_two(i.euid == 0, real, effective, i.ruid, i.euid, i.suid, i.fsuid);
}
int set_regid(PretendedIds& i, std::uint32_t real, std::uint32_t effective) {
    return set_two(i.euid == 0, real, effective, i.rgid, i.egid, i.sgid, i.fsgid);
}

int set_resuid(PretendedIds& i, std::uint32_t real, std::uint32_t effective, std::uint32_t saved) {
    return set_three(i.euid == 0, real, effective, saved, i.ruid, i.euid, i.suid, i.fsuid);
}
int set_resgid(PretendedIds& i, std::uint32_t real, std::uint32_t effective, std::uint32_t saved) {
    return set_three(i.euid == 0, real, effective, saved, i.rgid, i.egid, i.sgid, i.fsgid);
}

int set_groups(PretendedIds& i, std::vector<gid_t> groups) {
    if (i.euid != 0) return EPERM;
    i.groups = std::make_shared<const std::vector<gid_t>>(std::move(groups));
    return 0;
}

std::uint32_t set_fsuid(PretendedIds& i, std::uint32_t uid) {
    return set_fs(i.euid == 0, uid, i.ruid, i.euid, i.suid, i.fsuid);
}
std::uint32_t set_fsgid(PretendedIds& i, std::uint32_t gid) {
    return set_fs(i.euid == 0, gid, i.rgid, i.egid, i.sgid, i.fsgid);
}

}  // namespace kiln
