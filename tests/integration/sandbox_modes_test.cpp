// The --sandbox modes, run by the kiln binary as root on this machine: rootns and chroot must build the image
// that userns builds (ownership, modes and setuid bits included); chroot mode must give a step its /dev nodes,
// /dev/stdout, /dev/stderr and the host's name files without leaving them in the image, and end every process
// a step leaves; auto must name why it ruled out each stronger mode; a mode that cannot work must fail before
// any image is resolved. Capabilities are taken away with capsh, as a pod's runtime would.

#include <unistd.h>

#include "tests/integration/ownership_dockerfile.hpp"
#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

size_t count_occurrences(const std::string& text, const std::string& part) {
    size_t count = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
    return count;
}

class SandboxModesTest : public RunBuildTest {
protected:
    void SetUp() override {
        RunBuildTest::SetUp();
        if (IsSkipped()) return;
        if (::geteuid() != 0) GTEST_SKIP() << "the rootns and chroot sandboxes need root";
    }

    // Runs the following builds of this test under capsh, without these capabilities (e.g.
    // "cap_sys_admin,cap_setfcap").
    void drop_capabilities(const std::string& capabilities) {
        if (::access("/usr/sbin/capsh", X_OK) != 0) GTEST_SKIP() << "capsh is not installed (package libcap2-bin)";
        m_command_prefix = {"/usr/sbin/capsh", "--drop=" + capabilities, "--", "-c", "exec \"$0\" \"$@\""};
    }
};

// Files of several owners, made by RUN as root and as another user, a setuid binary, COPY --chown and a
// second stage's COPY --from: the same layers in every mode.
TEST_F(SandboxModesTest, RootnsAndChrootBuildWhatUsernsBuilds) {
    put("copied", "copied\n");
    const std::string dockerfile = k_ownership_dockerfile;
    std::vector<std::string> listings;
    for (std::string target : {"first", ""}) {
        std::vector<std::string> target_args = target.empty() ? std::vector<std::string>{}
                                                              : std::vector<std::string>{"--target", target};
        std::string userns_listing;
        for (const char* mode : {"userns", "rootns", "chroot"}) {
            std::vector<std::string> args = {"--reproducible", "--snapshotter=walk", str_cat("--sandbox=", mode),
                                             "--build-arg", "BASE=base"};
            args.insert(args.end(), target_args.begin(), target_args.end());
            KilnRun run = build_ok(dockerfile, args);
            EXPECT_TRUE(contains(run.output, str_cat("sandbox: ", mode, " sandbox"))) << run.output;
            if (std::string(mode) == "userns")
                userns_listing = layer_listing();
            else
                EXPECT_EQ(layer_listing(), userns_listing) << mode << ", target " << target;
        }
        listings.push_back(userns_listing);
    }
    EXPECT_TRUE(contains(listings[0], "1234/1234")) << listings[0];
    EXPECT_TRUE(contains(listings[0], "-rwsr-xr-x 0/0")) << listings[0];
    EXPECT_TRUE(contains(listings[0], "-rw-r----- 7/8")) << listings[0];
    EXPECT_EQ(content_of("app2/copied"), "copied\n");
    EXPECT_EQ(stat_of("app2/by-app")->st_uid, 1234u);
}

// A step reads the host's /etc/hosts and writes through /dev/stdout and /dev/stderr; the image keeps its own
// /etc/hosts and gets neither the stand-ins nor the /dev entries kiln made for the step.
TEST_F(SandboxModesTest, ChrootStepsGetStandInsThatStayOutOfTheImage) {
    put("hosts", "10.0.0.1 image-host\n");
    KilnRun run = build_ok("FROM base\nCOPY hosts /etc/hosts\n"
                           "RUN cat /etc/hosts > /seen-hosts && echo to-stdout > /dev/stdout && echo to-stderr | tee "
                           "/dev/stderr && test -c /dev/null && test -c /dev/urandom && test ! -e /proc/self\n"
                           "RUN echo changed > /etc/hosts && echo 'nameserver 192.0.2.1' > /etc/resolv.conf\n",
                           {"--sandbox=chroot"});
    EXPECT_TRUE(contains(run.output, "to-stdout\n")) << run.output;
    EXPECT_EQ(count_occurrences(run.output, "to-stderr\n"), 2u) << run.output;
    EXPECT_TRUE(contains(run.output, "kiln trusts this Dockerfile")) << run.output;
    EXPECT_EQ(content_of("seen-hosts"), read_file("/etc/hosts").value_or("<no /etc/hosts>"));
    EXPECT_EQ(content_of("etc/hosts"), "10.0.0.1 image-host\n");
    EXPECT_FALSE(exists("etc/resolv.conf"));
    EXPECT_FALSE(exists("etc/.kiln-image-hosts"));
    EXPECT_FALSE(exists("dev"));
    EXPECT_FALSE(any_layer_has("dev"));
    EXPECT_FALSE(any_layer_has("etc/resolv.conf"));
    EXPECT_FALSE(any_layer_has("etc/.kiln-image-hosts"));
}

// What a step starts in the background, even in a session of its own, ends with the step: the build does not
// wait for it, and no process of it is left.
TEST_F(SandboxModesTest, ChrootEndsEveryProcessAStepLeaves) {
    std::string marker = str_cat(40000 + ::getpid() % 20000);
    KilnRun run = build_ok(str_cat("FROM base\nRUN (setsid sleep ", marker, " > /dev/null 2>&1 &); sleep ", marker,
                                   " > /dev/null 2>&1 & echo started\n"),
                           {"--sandbox=chroot"});
    auto left = run_process({"pgrep", "-f", "sleep " + marker});
    ASSERT_TRUE(left) << left.error().message();
    EXPECT_EQ(left->exit_code, 1) << "still running: " << left->stdout_bytes;
}

// kiln killed in the middle of a step (a pod's SIGTERM): the step's processes end too.
TEST_F(SandboxModesTest, ChrootStepsEndWhenKilnIsKilled) {
    std::string marker = str_cat(20000 + ::getpid() % 20000);
    m_command_prefix = {"sh", "-c", "\"$0\" \"$@\" & kiln=$!; sleep 2; kill -TERM $kiln; wait $kiln; sleep 1; exit 3"};
    // A killed kiln leaves its work directory: it goes with the test's own.
    KilnRun run = build(str_cat("FROM base\nRUN (setsid sleep ", marker, " > /dev/null 2>&1 &); sleep ", marker, "\n"),
                        {"--sandbox=chroot", "--work-dir", case_path("work")});
    EXPECT_EQ(run.exit_code, 3) << run.output;
    EXPECT_TRUE(contains(run.output, "RUN (setsid sleep")) << "the step never started:\n" << run.output;
    auto left = run_process({"pgrep", "-f", "sleep " + marker});
    ASSERT_TRUE(left) << left.error().message();
    EXPECT_EQ(left->exit_code, 1) << "still running: " << left->stdout_bytes;
}

// An image whose /dev holds something else than the devices (a regular /dev/null, say) keeps it; the step gets
// the real devices.
TEST_F(SandboxModesTest, ChrootStepsGetRealDevicesOverTheImagesOwn) {
    put("not-a-device", "image bytes\n");
    build_ok("FROM base\nCOPY not-a-device /dev/null\nRUN echo discarded > /dev/null && test -c /dev/null && "
             "test -z \"$(cat /dev/null)\" && echo ran > /ran\n",
             {"--sandbox=chroot"});
    EXPECT_EQ(content_of("ran"), "ran\n");
    EXPECT_EQ(content_of("dev/null"), "image bytes\n");
}

TEST_F(SandboxModesTest, ChrootRefusesRunMountsItCannotMount) {
    KilnRun run = build("FROM base\nRUN --mount=type=tmpfs,target=/scratch true\n", {"--sandbox=chroot"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "RUN --mount needs a sandbox that can mount")) << run.output;
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
}

// Without CAP_SYS_CHROOT no mode but userns is left; asked for chroot, kiln fails before it resolves the base.
TEST_F(SandboxModesTest, AnExplicitModeThatCannotWorkFailsBeforeTheBaseIsResolved) {
    drop_capabilities("cap_sys_chroot");
    KilnRun run = build("FROM base\nRUN true\n", {"--sandbox=chroot"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "--sandbox=chroot cannot work here")) << run.output;
    EXPECT_TRUE(contains(run.output, "CAP_SYS_CHROOT")) << run.output;
    EXPECT_FALSE(contains(run.output, "FROM base:")) << "the base was resolved first:\n" << run.output;
}

}  // namespace
}  // namespace kiln::test
