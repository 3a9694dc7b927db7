#pragma once
// An owned file descriptor, closed when it goes out of scope.

#include <sys/types.h>
#include <unistd.h>

#include <utility>

#include "common/error.hpp"

namespace kiln {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.m_fd, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    explicit operator bool() const { return valid(); }

    // Gives up ownership without closing.
    int release() { return std::exchange(m_fd, -1); }
    void reset(int fd = -1) {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = fd;
    }

private:
    int m_fd = -1;
};

// A pipe whose both ends close on exec: {read end, write end}.
Result<std::pair<UniqueFd, UniqueFd>> make_pipe();

// Sends the byte `tag` and the descriptor `fd` (SCM_RIGHTS) over the Unix socket `socket`. Returns 0, or the
// errno. Async-signal-safe: a cloned child of kiln may call it.
int send_descriptor(int socket, int fd, char tag);

// One message from the Unix socket `socket`: up to `size` bytes into `data`, and the descriptor it carries,
// close-on-exec. `size` is what recvmsg returned (-1 with `err` set, 0 when every sender is gone); `fd` is
// invalid when the message carried none.
struct ReceivedMessage {
    ssize_t size = -1;
    int err = 0;
    UniqueFd fd;
};
ReceivedMessage receive_descriptor(int socket, void* data, size_t size);

}  // namespace kiln
