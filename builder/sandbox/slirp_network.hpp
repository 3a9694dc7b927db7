#pragma once
// The network of a RUN step under --run-network=private: the step's network namespace gets a tap device that
// slirp4netns, running in kiln's own network namespace, connects to the outside world through ordinary
// sockets (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3). slirp4netns runs with
// --disable-host-loopback, so the step cannot reach services that listen on the host's loopback; what it
// reaches is what an unprivileged process of kiln's could connect to, other than 127.0.0.0/8.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

// slirp4netns's DNS forwarder, as seen from the step.
inline constexpr const char* k_slirp_dns = "10.0.2.3";

// The resolv.conf a step on a private network gets, given the host's: nullopt to bind the host's as it is; the
// host's with its nameservers replaced by slirp4netns's forwarder when every one of them is on loopback
// (systemd-resolved's 127.0.0.53, say), which the step cannot reach.
std::optional<std::string> private_network_resolv_conf(std::string_view host);

class SlirpNetwork {
public:
    // Starts slirp4netns for the network namespace of `pid` (the sandbox's init, before it runs anything) and
    // waits until the interface is configured. Fails naming slirp4netns and what it said.
    static Result<SlirpNetwork> start(pid_t pid);
    SlirpNetwork(SlirpNetwork&& other) noexcept;
    SlirpNetwork& operator=(SlirpNetwork&&) = delete;
    SlirpNetwork(const SlirpNetwork&) = delete;
    // Stops slirp4netns (its exit descriptor closes) and reaps it. If kiln dies first, the same happens.
    ~SlirpNetwork();

private:
    SlirpNetwork(pid_t pid, UniqueFd exit_write) : m_pid(pid), m_exit_write(std::move(exit_write)) {}
    pid_t m_pid = -1;
    UniqueFd m_exit_write;
};

}  // namespace kiln
