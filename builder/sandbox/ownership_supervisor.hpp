#pragma once
// Ownership in a single-id user namespace (../shared/research/fake-ownership.md). There only kiln's own uid
// exists, as 0, so a RUN's chown to any other id, its switches to another user and the files it makes as
// that user would fail or lose their owner. A seccomp filter (ownership_filter.hpp), installed in the step
// before it execs, hands those calls to a supervisor thread in kiln (SECCOMP_RET_USER_NOTIF), which:
//  - for chown and its kin, records the owner in the file's ownership override (file_metadata.hpp), which the
//    snapshot and the layer writer read as the file's uid and gid, and succeeds;
//  - keeps the ids that each thread pretends to have: setuid, setgid, setgroups and their kin change them
//    under the kernel's rules (a pretended euid 0 may take any id), get*id and getgroups report them, and a
//    new thread or process starts with its parent's;
//  - makes the files (open and creat with O_CREAT) and directories (mkdir) of a thread whose pretended
//    filesystem ids are not 0, in the step's root and with its umask, and records those ids as their owner;
//  - answers stat and its kin, for a file whose owner is recorded, with that owner.
// Paths are resolved in the calling process's root (/proc/PID/root, with RESOLVE_IN_ROOT), never in kiln's.
// What is not pretended (README.md lists it): exec of a setuid-bit program leaves the pretended ids as they
// were; symlinks, fifos and sockets keep owner 0 (the filesystem records no override on them); openat2 with
// resolve flags and 32-bit (i386, x32) calls run as they would without the supervisor.

#include <memory>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

class OwnershipSupervisor {
public:
    // Starts the thread that receives the listener on `socket` and answers the step's calls until every
    // process under the filter has ended, or stop().
    static Result<std::unique_ptr<OwnershipSupervisor>> start(UniqueFd socket);
    ~OwnershipSupervisor();
    OwnershipSupervisor(const OwnershipSupervisor&) = delete;
    OwnershipSupervisor& operator=(const OwnershipSupervisor&) = delete;

    // Ends the thread (the step's processes are gone) and waits for it. Calls it could not answer were
    // answered with their errno, and the first such failure is logged.
    void stop();

private:
    OwnershipSupervisor(UniqueFd socket, UniqueFd stop_event);
    void serve();

    UniqueFd m_socket;
    UniqueFd m_stop_event;
    std::thread m_thread;
};

}  // namespace kiln
