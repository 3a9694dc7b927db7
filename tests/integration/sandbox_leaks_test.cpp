// What a RUN step must not reach, built by the kiln binary as root: the caller's session keyring, device nodes
// that a base image carries, and kiln's own command line and environment through the sandbox's PID 1.

#include <archive_entry.h>
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "tests/integration/run_build_fixture.hpp"
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

    // The uncompressed layers of the suite's busybox base, bottom first.
    std::vector<std::string> base_layers() {
        std::string layout = s_work->path() + "/base";
        auto index = nlohmann::json::parse(read_file(layout + "/index.json").value_or("{}"));
        std::string manifest_digest = index["manifests"][0]["digest"];
        auto manifest =
            nlohmann::json::parse(read_file(layout + "/blobs/sha256/" + manifest_digest.substr(7)).value_or("{}"));
        std::vector<std::string> layers;
        for (const auto& layer : manifest["layers"]) {
            std::string digest = layer["digest"];
            auto tar = run_process({"gzip", "-dc", layout + "/blobs/sha256/" + digest.substr(7)});
            EXPECT_TRUE(tar && tar->exit_code == 0) << digest;
            if (tar) layers.push_back(tar->stdout_bytes);
        }
        return layers;
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

}  // namespace
}  // namespace kiln::test
