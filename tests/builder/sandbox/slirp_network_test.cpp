// The resolv.conf a step gets on a private network (--run-network=private).

#include "builder/sandbox/slirp_network.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

// systemd-resolved's stub is on the host's loopback, which the step cannot reach: it gets slirp4netns's
// forwarder, with the host's search domains and options kept.
TEST(PrivateNetworkResolvConf, ALoopbackResolverIsReplacedByTheForwarder) {
    EXPECT_EQ(private_network_resolv_conf("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.test\n"),
              "nameserver 10.0.2.3\noptions edns0 trust-ad\nsearch example.test\n");
    EXPECT_EQ(private_network_resolv_conf("nameserver\t::1\n"), "nameserver 10.0.2.3\n");
}

// A resolver the step can reach through slirp4netns (a pod's cluster DNS) stays, as does a file without any.
TEST(PrivateNetworkResolvConf, AReachableResolverIsKept) {
    EXPECT_EQ(private_network_resolv_conf("nameserver 10.96.0.10\nsearch svc.cluster.local\n"), std::nullopt);
    EXPECT_EQ(private_network_resolv_conf("nameserver 127.0.0.53\nnameserver 192.0.2.1\n"), std::nullopt);
    EXPECT_EQ(private_network_resolv_conf("# empty\n"), std::nullopt);
}

}  // namespace
}  // namespace kiln
