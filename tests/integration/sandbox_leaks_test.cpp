// What a RUN step must not reach, built by the kiln binary as root: the caller's session keyring, device nodes
// that a base image carries, and kiln's own command line and environment through the sandbox's PID 1.

#include <archive_entry.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "tests/integration/run_build_fixture.hpp"
#include "tests/support/local_http_server.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

extern char** environ;

namespace kiln::test {
namespace {

std::string random_marker(const std::string& prefix) {
    return str_cat(prefix, std::random_device{}(), "-", std::random_device{}());
}

class SandboxLeaksTest : public RunBuildTest {
protected:
    void SetUp() override {
        RunBuildTest::SetUp();
        if (IsSkipped()) return;
        if (::geteuid() != 0) GTEST_SKIP() << "these cases extract device nodes and use the rootns sandbox: they need root";
    }

    // The environment of this test with `extra` added, for run_kiln (which replaces it).
    static std::vector<std::string> environment_with(const std::string& extra) {
        std::vector<std::string> environment;
        for (char** entry = environ; *entry; ++entry) environment.emplace_back(*entry);
        environment.push_back(extra);
        return environment;
    }
};

TestTar::Entry device(const std::string& name, unsigned major, unsigned minor) {
    TestTar::Entry entry;
    entry.name = name;
    entry.type = AE_IFCHR;
    entry.mode = 0666;
    entry.rdev_major = major;
    entry.rdev_minor = minor;
    return entry;
}

// The caller added a key to its session keyring; runc and crun give a container a keyring of its own, and so
// must kiln: the step can read neither the key's payload nor, through /proc/keys, its name.
TEST_F(SandboxLeaksTest, AStepDoesNotInheritTheCallersSessionKeyring) {
    auto reader = read_file(str_cat(KILN_BINARY_DIR, "/tests/integration/kiln_test_key_reader"), 16 << 20);
    ASSERT_TRUE(reader) << reader.error().message();
    put("key-reader", *reader, 0755);
    // A session keyring of this test's own, which kiln inherits, so that no other process's keys are involved.
    ASSERT_GE(::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "kiln-test-session"), 0) << std::strerror(errno);
    std::string name = random_marker("kiln-test-key-");
    std::string payload = random_marker("kiln-test-payload-");
    long key = ::syscall(SYS_add_key, "user", name.c_str(), payload.data(), payload.size(), KEY_SPEC_SESSION_KEYRING);
    ASSERT_GE(key, 0) << std::strerror(errno);
    std::string keys = read_file("/proc/keys").value_or("");
    ASSERT_NE(keys.find(name), std::string::npos) << "the test cannot see its own key:\n" << keys;

    for (const char* mode : {"userns", "rootns"}) {
        build_ok(str_cat("FROM base\nCOPY key-reader /key-reader\nRUN /key-reader ", key,
                         " > /payload; cat /proc/keys > /keys; true\n"),
                 {str_cat("--sandbox=", mode)});
        EXPECT_TRUE(content_of("payload").starts_with("denied: ")) << mode << ": " << content_of("payload");
        EXPECT_EQ(content_of("keys").find(name), std::string::npos) << mode << ":\n" << content_of("keys");
    }
    ::syscall(SYS_keyctl, KEYCTL_UNLINK, key, KEY_SPEC_SESSION_KEYRING);
}

// A base layer carries character devices with the numbers of /dev/null and /dev/zero (a hostile image would
// use a kernel log's or a disk's). The step can neither open them nor one it makes itself, with either
// snapshotter and in either namespace mode; the sandbox's own /dev still works.
TEST_F(SandboxLeaksTest, DeviceNodesOfABaseImageDoNotOpen) {
    std::vector<std::string> layers = base_layers();
    ASSERT_FALSE(layers.empty());
    layers.push_back(TestTar().add(device("node-null", 1, 3)).add(device("node-zero", 1, 5)).bytes());
    auto image = write_test_image(case_path("devices"), "latest", layers);
    ASSERT_TRUE(image) << image.error().message();

    const std::string dockerfile =
        "FROM devices\n"
        "RUN test -c /node-null && test -c /node-zero && "
        "(if echo x > /node-null; then echo opened; else echo refused; fi) > /null-result 2>&1; "
        "(if head -c 1 /node-zero > /dev/null; then echo opened; else echo refused; fi) > /zero-result 2>&1; "
        "(if mknod /dev/made c 1 3 && echo x > /dev/made; then echo opened; else echo refused; fi) > /made-result 2>&1; "
        "echo works > /dev/null && head -c 1 /dev/zero | wc -c > /own-dev\n";
    for (const char* snapshotter : {"walk", "overlay"}) {
        for (const char* mode : {"userns", "rootns"}) {
            KilnRun run = build(dockerfile, {str_cat("--snapshotter=", snapshotter), str_cat("--sandbox=", mode),
                                             "--build-context", "devices=oci-layout://" + case_path("devices")});
            if (run.exit_code != 0 && std::string(snapshotter) == "overlay" &&
                run.output.find("overlay is unavailable") != std::string::npos)
                continue;  // SnapshotterTest says why overlay cannot work here
            ASSERT_EQ(run.exit_code, 0) << run.output;
            std::string where = str_cat(snapshotter, ", ", mode);
            EXPECT_TRUE(content_of("null-result").ends_with("refused\n")) << where << ": " << content_of("null-result");
            EXPECT_TRUE(content_of("zero-result").ends_with("refused\n")) << where << ": " << content_of("zero-result");
            EXPECT_TRUE(content_of("made-result").ends_with("refused\n")) << where << ": " << content_of("made-result");
            EXPECT_EQ(content_of("own-dev"), "1\n") << where;
        }
    }
}

// The sandbox's PID 1 is a copy of kiln: the step sees a neutral name in its command line, and neither kiln's
// flags (a build argument's value) nor its environment.
TEST_F(SandboxLeaksTest, TheSandboxInitShowsNeitherKilnsFlagsNorItsEnvironment) {
    std::string argument = random_marker("kiln-test-arg-");
    std::string variable = random_marker("kiln-test-env-");
    for (const char* mode : {"userns", "rootns"}) {
        build_ok("FROM base\nARG VALUE\nRUN tr '\\0' ' ' < /proc/1/cmdline > /cmdline; "
                 "cat /proc/1/environ > /environ 2>&1; true\n",
                 {str_cat("--sandbox=", mode), "--build-arg", "VALUE=" + argument},
                 environment_with("KILN_TEST_VARIABLE=" + variable));
        std::string cmdline = content_of("cmdline");
        EXPECT_TRUE(cmdline.starts_with("init")) << mode << ": " << cmdline;
        for (const std::string& secret : {argument, variable, std::string("--build-arg")}) {
            EXPECT_EQ(cmdline.find(secret), std::string::npos) << mode << ": " << cmdline;
            EXPECT_EQ(content_of("environ").find(secret), std::string::npos) << mode << ": " << content_of("environ");
        }
    }
}

// The first IPv4 address of this host that is not loopback, or "" (traffic to it stays on this machine).
std::string host_address() {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return "";
    std::string found;
    for (ifaddrs* entry = list; entry && found.empty(); entry = entry->ifa_next) {
        if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET || (entry->ifa_flags & IFF_LOOPBACK)) continue;
        char text[INET_ADDRSTRLEN];
        const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
        if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof text)) found = text;
    }
    ::freeifaddrs(list);
    return found;
}

// A RUN shares the host's network by default, loopback included: a step read the local registry's catalogue.
// With --run-network=private it gets a network of its own: the host's loopback services are out of reach
// (directly and through slirp4netns's gateway), while outbound connections still work.
TEST_F(SandboxLeaksTest, APrivateRunNetworkReachesOutButNotTheHostsLoopback) {
    if (::access("/usr/bin/slirp4netns", X_OK) != 0) GTEST_SKIP() << "slirp4netns is not installed (scripts/setup installs it)";
    std::string address = host_address();
    if (address.empty()) GTEST_SKIP() << "this host has no IPv4 address but loopback to reach out to";
    auto loopback = test::LocalHttpServer::start([](const test::LocalRequest&) { return test::LocalResponse{.body = "loopback-only"}; });
    ASSERT_TRUE(loopback) << loopback.error().message();
    auto outside = test::LocalHttpServer::start([](const test::LocalRequest&) { return test::LocalResponse{.body = "reached-out"}; }, address);
    ASSERT_TRUE(outside) << outside.error().message();
    // busybox's nc: its static wget crashes in an image without the C library's name service files.
    auto get = [](const std::string& host, std::uint16_t at, const std::string& file) {
        return str_cat("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ", host, " ", at, " > /", file, " 2>&1; ");
    };
    std::uint16_t port = (*loopback)->port();
    std::string dockerfile = str_cat("FROM base\nRUN ", get("127.0.0.1", port, "loopback"), get("10.0.2.2", port, "gateway"),
                                     get(address, (*outside)->port(), "outside"), "true\n");

    build_ok(dockerfile);
    EXPECT_TRUE(contains(content_of("loopback"), "loopback-only")) << "the default is the host's network, as docker build's";
    for (const char* mode : {"userns", "rootns"}) {
        KilnRun run = build_ok(dockerfile, {"--run-network=private", str_cat("--sandbox=", mode)});
        EXPECT_FALSE(contains(content_of("loopback"), "loopback-only")) << mode;
        EXPECT_FALSE(contains(content_of("gateway"), "loopback-only")) << mode;
        EXPECT_TRUE(contains(content_of("outside"), "reached-out")) << mode << ":\n" << content_of("outside") << run.output;
    }
    // A resolver on the host's loopback (systemd-resolved's stub) is out of the step's reach: it gets
    // slirp4netns's forwarder instead. The host's resolv.conf is replaced in a mount namespace of kiln's own.
    put("loopback-resolv.conf", "nameserver 127.0.0.53\nsearch example.test\n");
    m_command_prefix = {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                        str_cat("mount --bind ", context_path("loopback-resolv.conf"), " /etc/resolv.conf && exec \"$0\" \"$@\"")};
    build_ok("FROM base\nRUN cat /etc/resolv.conf > /seen-resolv.conf\n", {"--run-network=private"});
    EXPECT_EQ(content_of("seen-resolv.conf"), "nameserver 10.0.2.3\nsearch example.test\n");
    m_command_prefix.clear();

    // The chroot sandbox cannot make a network namespace: it refuses rather than share the host's.
    KilnRun chroot = build(dockerfile, {"--run-network=private", "--sandbox=chroot"});
    EXPECT_NE(chroot.exit_code, 0);
    EXPECT_TRUE(contains(chroot.output, "--run-network=private needs a network namespace")) << chroot.output;
}

}  // namespace
}  // namespace kiln::test
