#include "common/fd.hpp"

#include <fcntl.h>

namespace kiln {

Result<std::pair<UniqueFd, UniqueFd>> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe2");
    return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace kiln
