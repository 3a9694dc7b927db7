#pragma once
// The seccomp filter that hands a RUN step's ownership calls to kiln's ownership supervisor
// (ownership_supervisor.hpp) in a single-id user namespace.

#include "common/error.hpp"

namespace kiln {

// Installs the filter in the calling process, which every process it forks and execs inherits, and sends its
// listener over the socket `socket` (SCM_RIGHTS). Async-signal-safe: it runs in the sandbox's child. Returns
// 0, or the errno of the failing call.
int install_ownership_filter(int socket);

// Whether this kernel lets this process install such a filter (Linux 5.19 or later); the error says why not.
// Tries it in a child process.
Status probe_ownership_filter();

}  // namespace kiln
