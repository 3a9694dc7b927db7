// kiln in emulated pods (pod.hpp): the executor image, built by kiln, runs under runc with a pod's security
// context, builds a Dockerfile whose RUN steps give files several owners, and pushes over the host's loopback to
// the tests' registry. What it pushes must flatten to the image that kiln's userns sandbox builds on the host,
// ownership and modes included, and the log must name the sandbox mode the pod allowed.

#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/integration/flat_image.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/integration/task_file.hpp"
#include "tests/pods/pod.hpp"
#include "tests/support/debian_base.hpp"
#include "tests/support/test_image.hpp"

namespace kiln::test {
namespace {

// What every pod builds, FROM Debian (BASE): Debian's own tools giving files several owners, as a pipeline's
// Dockerfile does. groupadd and useradd (which copies /etc/skel and chowns it, and gives the new /etc/shadow the
// owner it reads from the old one), apt-get installing a package whose maintainer script hands its files to that
// user and sets a setuid bit, chown -R, su to the user, ids recorded as root and as the user, a setuid copy,
// COPY --chown, and a second stage's COPY --from. The context holds kiln-owned.deb (write_owned_package) and
// "copied".
constexpr const char* k_debian_dockerfile =
    "ARG BASE\n"
    "FROM $BASE AS first\n"
    "ENV SOURCE_DATE_EPOCH=0\n"
    "RUN groupadd -g 1234 app && useradd -l -m -u 1234 -g app -s /bin/sh app && echo x > /dev/null\n"
    "COPY kiln-owned.deb /tmp/\n"
    "RUN apt-get install -y /tmp/kiln-owned.deb && rm -rf /tmp/kiln-owned.deb /var/log/* /var/cache/apt/*.bin "
    "/var/cache/debconf/*-old\n"
    "RUN mkdir -p /app/data && echo hi > /app/data/f && chown -R app:app /app && su app -c 'touch /app/by-su'\n"
    "RUN cp /bin/true /suid && chmod 4755 /suid && id > /id-root && chown 7:8 /id-root && chmod 640 /id-root\n"
    "USER app\n"
    "RUN id > /home/app/id && touch /app/by-app && mkdir /home/app/private && chmod 700 /home/app/private\n"
    "COPY --chown=1234:1234 copied /app/copied\n"
    "FROM $BASE\n"
    "COPY --from=first /app /app2\n"
    "COPY --from=first /suid /id-root /\n"
    "COPY --from=first /opt/kiln-owned /opt/kiln-owned\n"
    "COPY --from=first /home/app /home/app\n";

// A Debian package whose maintainer script gives its files to the user k_debian_dockerfile adds, as
// `context`/kiln-owned.deb, made with dpkg-deb.
Status write_owned_package(const std::string& work, const std::string& context) {
    std::string package = work + "/package";
    KILN_TRY(make_directories(package + "/DEBIAN"));
    KILN_TRY(make_directories(package + "/opt/kiln-owned"));
    KILN_TRY(write_file_atomic(package + "/DEBIAN/control",
                               "Package: kiln-owned\nVersion: 1.0\nArchitecture: all\n"
                               "Maintainer: kiln tests <tests@kiln.invalid>\n"
                               "Description: files a maintainer script gives to another user\n"));
    KILN_TRY(write_file_atomic(package + "/DEBIAN/postinst",
                               "#!/bin/sh\nset -e\nchown -R app:app /opt/kiln-owned\nchmod 4755 /opt/kiln-owned/tool\n",
                               0755));
    KILN_TRY(write_file_atomic(package + "/opt/kiln-owned/data", "data\n"));
    KILN_TRY(write_file_atomic(package + "/opt/kiln-owned/tool", "#!/bin/sh\n", 0755));
    KILN_ASSIGN(ProcessResult built,
                run_process({"dpkg-deb", "--root-owner-group", "--build", package, context + "/kiln-owned.deb"}));
    if (built.exit_code != 0) return fail("dpkg-deb failed: " + built.stderr_bytes);
    return {};
}

class PodTest : public RegistryBuildTest {
protected:
    static void SetUpTestSuite() {
        if (std::string why = pods_unavailable(); !why.empty()) {
            s_skip_reason = why;
            return;
        }
        RegistryBuildTest::SetUpTestSuite();
        if (s_skip_reason || !s_base) return;
        // The pods' Debian base: made once per machine, and pushed to this suite's registry for the builds.
        auto layout = debian_base_layout();
        if (!layout) {
            s_skip_reason = "no Debian base for the pods: " + layout.error().message();
            return;
        }
        s_debian = new std::string(s_registry->host_port() + "/base/debian:bookworm");
        ASSERT_TRUE(push_layout(*layout, "bookworm", *s_debian));
        // The executor image: kiln builds it FROM the same Debian base, and its rootfs is the pods' root filesystem.
        std::string work_dir = s_work->path();
        auto laid_out = run_process({source_path("scripts/make-executor-context"), work_dir + "/executor-context",
                                     kiln_binary()});
        ASSERT_TRUE(laid_out && laid_out->exit_code == 0) << (laid_out ? laid_out->stderr_bytes : laid_out.error().message());
        KilnRun executor = run_kiln({"build", "--context", work_dir + "/executor-context", "--build-context",
                                     "base=oci-layout://" + *layout + ":bookworm", "--no-push", "--oci-layout-path",
                                     work_dir + "/executor-layout"});
        ASSERT_EQ(executor.exit_code, 0) << executor.output;
        auto unpacked = unpack_layout(work_dir + "/executor-layout", "latest", work_dir + "/executor-bundle");
        ASSERT_TRUE(unpacked) << unpacked.error().message();
        s_rootfs = new std::string(work_dir + "/executor-bundle/rootfs");
    }
    static void TearDownTestSuite() {
        delete s_rootfs;
        s_rootfs = nullptr;
        delete s_debian;
        s_debian = nullptr;
        RegistryBuildTest::TearDownTestSuite();
    }
    void SetUp() override {
        RegistryBuildTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_NE(s_rootfs, nullptr) << "the executor image could not be built";
        // The pod's bundle: its own config.json, for the shared executor rootfs.
        m_bundle = m_dir.path() + "/bundle";
        ASSERT_TRUE(make_directories(m_bundle));
        // The pod's emptyDir: the build context.
        m_workspace = m_dir.path() + "/workspace";
        ASSERT_TRUE(make_directories(m_workspace + "/context"));
        ASSERT_TRUE(write_file_atomic(m_workspace + "/context/Dockerfile", k_debian_dockerfile));
        ASSERT_TRUE(write_file_atomic(m_workspace + "/context/copied", "copied\n"));
        ASSERT_TRUE(write_owned_package(m_dir.path(), m_workspace + "/context"));
    }

    std::string pod_image(const std::string& name) const { return reference("pods/" + name); }

    // kiln's build step, as the Tekton Task runs it, inside a pod of `spec`; `home` is its $HOME, when not the
    // user's home in the executor image.
    PodRun build_in_pod(PodSpec spec, const std::string& destination, const std::string& home = "") {
        std::string rootfs = *s_rootfs;
        if (spec.user_namespace) {
            // The kubelet gives such a pod its image and volumes through idmapped mounts, which this runc lacks:
            // copies owned by the pod's root stand in for them.
            rootfs = m_dir.path() + "/rootfs-" + str_cat(spec.host_id_base);
            std::string owner = str_cat(spec.host_id_base, ":", spec.host_id_base);
            for (const std::vector<std::string>& command :
                 {std::vector<std::string>{"cp", "-a", *s_rootfs, rootfs}, {"chown", "-hR", owner, rootfs},
                  {"chown", "-hR", owner, m_workspace}, {"chmod", "0711", s_work->path(), m_dir.path()}}) {
                auto done = run_process(command);
                EXPECT_TRUE(done && done->exit_code == 0) << join(command, " ");
            }
        }
        spec.args = {"/kaniko/executor", "--context", "/workspace/context", "--build-arg", "BASE=" + *s_debian,
                     "--destination", destination, "--insecure", "--insecure-pull"};
        spec.environment = {"PATH=/kaniko:/usr/bin:/bin:/usr/sbin:/sbin",
                            "HOME=" + (!home.empty() ? home : spec.uid == 0 ? "/root" : "/home/builder")};
        spec.volumes = {{m_workspace, "/workspace"}};
        auto run = run_pod(m_bundle, rootfs, spec);
        EXPECT_TRUE(run) << run.error().message();
        return run ? *run : PodRun{};
    }

    // The same build on the host, in kiln's userns sandbox: what every pod must match.
    void build_reference(const std::string& destination) {
        KilnRun run = run_kiln({"build", "--context", m_workspace + "/context", "--build-arg", "BASE=" + *s_debian,
                                "--destination", destination, "--insecure", "--insecure-pull", "--sandbox=userns"});
        ASSERT_EQ(run.exit_code, 0) << run.output;
    }

    // Flattens both images, fails the test with every difference, and returns the built one's tree.
    ImageTree expect_same_trees(const std::string& built, const std::string& expected) {
        auto left = pull_image(built, m_dir.path() + "/pulled-built");
        auto right = pull_image(expected, m_dir.path() + "/pulled-expected");
        EXPECT_TRUE(left) << left.error().message();
        EXPECT_TRUE(right) << right.error().message();
        if (!left || !right) return {};
        auto left_tree = flatten_layers(left->layer_files);
        auto right_tree = flatten_layers(right->layer_files);
        EXPECT_TRUE(left_tree && right_tree);
        if (!left_tree || !right_tree) return {};
        EXPECT_EQ(join(tree_differences(*left_tree, *right_tree, "pod", "host"), "\n"), "");
        EXPECT_EQ(join(config_differences(runtime_config(left->config), runtime_config(right->config), "pod", "host"), "\n"),
                  "");
        return *left_tree;
    }

    // The ownership Dockerfile's image, as expect_same_trees, holding what its steps did.
    void expect_same_image(const std::string& built, const std::string& expected) {
        ImageTree tree = expect_same_trees(built, expected);
        // The image holds what the steps did: files of other owners, setuid bits.
        auto owner = [&tree](const std::string& path) {
            return tree.count(path) ? str_cat(tree.at(path).uid, ":", tree.at(path).gid) : "missing";
        };
        // (/home/app itself is made by the second stage's COPY, as root's.)
        for (const char* path : {"/home/app/.bashrc", "/home/app/id", "/home/app/private",
                                 "/opt/kiln-owned/data", "/opt/kiln-owned/tool", "/app2/data/f", "/app2/by-su",
                                 "/app2/by-app", "/app2/copied"})
            EXPECT_EQ(owner(path), "1234:1234") << path;
        EXPECT_EQ(owner("/id-root"), "7:8");
        for (const char* path : {"/suid", "/opt/kiln-owned/tool"})
            EXPECT_EQ(tree.count(path) ? tree.at(path).mode : 0u, 04755u) << path;
    }

    // Runs `manifest`'s build-and-push step in a pod of `spec`, pushing `image`; checks the push and the results,
    // and returns kiln's output.
    std::string run_task_step(const std::string& manifest, PodSpec spec, const std::string& image) {
        auto text = read_file(source_path(manifest));
        EXPECT_TRUE(text) << text.error().message();
        TaskFile task = read_task(text.value_or(""), "build-and-push");
        EXPECT_FALSE(task.step.args.empty()) << "no args found for the build-and-push step of " << manifest;
        std::string source = m_dir.path() + "/source";
        std::string results = m_dir.path() + "/results";
        EXPECT_TRUE(make_directories(source) && make_directories(results, 0777));
        ::chmod(results.c_str(), 0777);  // as Tekton's: any step's user writes its results
        EXPECT_TRUE(write_file_atomic(source + "/" + task.defaults["DOCKERFILE"], k_debian_dockerfile));
        EXPECT_TRUE(write_file_atomic(source + "/copied", "copied\n"));
        EXPECT_TRUE(write_owned_package(m_dir.path(), source));
        std::map<std::string, std::string> substitutions = {
            {"$(workspaces.source.path)", "/workspace/source"},
            {"$(params.DOCKERFILE)", task.defaults["DOCKERFILE"]},
            {"$(params.CONTEXT)", task.defaults["CONTEXT"]},
            {"$(params.IMAGE)", image},
            {"$(results.IMAGE_DIGEST.path)", "/tekton/results/IMAGE_DIGEST"},
            {"$(results.IMAGE_URL.path)", "/tekton/results/IMAGE_URL"},
            {"$(results.IMAGE_REF.path)", "/tekton/results/IMAGE_REF"},
        };
        spec.args = {"/kaniko/executor"};  // the image's entrypoint: the step gives args only
        for (std::string arg : task.step.args) {
            if (arg == "$(params.EXTRA_ARGS[*])") {
                for (const char* extra : {"--insecure", "--insecure-pull"}) spec.args.emplace_back(extra);
                spec.args.push_back("--build-arg=BASE=" + *s_debian);
                continue;
            }
            for (const auto& [from, to] : substitutions) arg = replace_all(arg, from, to);
            EXPECT_EQ(arg.find("$("), std::string::npos) << "a substitution the test does not make: " << arg;
            spec.args.push_back(arg);
        }
        spec.environment = {"PATH=/kaniko:/usr/bin:/bin:/usr/sbin:/sbin",
                            spec.uid == 0 ? "HOME=/root" : "HOME=/home/builder"};
        spec.working_directory = "/workspace/source";
        spec.volumes = {{source, "/workspace/source"}, {results, "/tekton/results"}};
        for (const auto& [name, mount_path] : task.step.volume_mounts) {
            std::string local = m_dir.path() + "/volume-" + name;
            EXPECT_TRUE(make_directories(local));
            ::chmod(local.c_str(), 0777);  // an emptyDir
            spec.volumes.emplace_back(local, mount_path);
        }
        auto run = run_pod(m_bundle, *s_rootfs, spec);
        EXPECT_TRUE(run) << run.error().message();
        if (!run) return "";
        EXPECT_EQ(run->exit_code, 0) << run->output;
        auto pushed = inspect_remote(image);
        EXPECT_TRUE(pushed) << pushed.error().message();
        if (!pushed) return run->output;
        std::string digest = (*pushed)["Digest"].get<std::string>();
        EXPECT_EQ(read_file(results + "/IMAGE_DIGEST").value_or(""), digest);
        EXPECT_EQ(read_file(results + "/IMAGE_URL").value_or(""), image);
        std::string repository = image.substr(0, image.rfind(':'));
        EXPECT_EQ(read_file(results + "/IMAGE_REF").value_or(""), repository + "@" + digest);
        return run->output;
    }

    static bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

    std::string m_bundle;
    std::string m_workspace;
    static inline std::string* s_rootfs = nullptr;
    static inline std::string* s_debian = nullptr;  // the Debian base in this suite's registry
};

// Pod Security "baseline", Kaniko's usual pod: root, Docker's or containerd's default capabilities, RuntimeDefault.
// No user namespace and no mount: kiln builds in chroot mode.
TEST_F(PodTest, RootWithDefaultCapabilitiesAndRuntimeDefaultSeccompBuildsInChrootMode) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::docker_default, .seccomp = PodSeccomp::runtime_default},
                              pod_image("baseline:1"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: chroot sandbox")) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: not userns: ")) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: not rootns: ")) << run.output;
    EXPECT_TRUE(contains(run.output, "snapshotter: walk")) << run.output;
    build_reference(pod_image("reference:1"));
    expect_same_image(pod_image("baseline:1"), pod_image("reference:1"));
}

// Root with CRI-O's default capabilities and profile: unshare and mount are allowed, but without CAP_SETFCAP no
// user namespace may map host uid 0, and without CAP_SYS_ADMIN no mount can be idmapped. kiln re-executes itself
// in a user namespace over root's host range, where every id is mapped, and nests the userns sandbox there.
// Root's Docker config, which only root may read, is handed to it by the outer process.
TEST_F(PodTest, RootWithCrioDefaultCapabilitiesAndSeccompBuildsInUsernsMode) {
    ASSERT_TRUE(make_directories(m_workspace + "/home/.docker"));
    ASSERT_TRUE(write_file_atomic(m_workspace + "/home/.docker/config.json", "{\"auths\": {}}", 0600));
    ASSERT_EQ(::chmod((m_workspace + "/home").c_str(), 0700), 0);
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::crio_default, .seccomp = PodSeccomp::crio_default},
                              pod_image("crio:1"), "/workspace/home");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "kiln builds in a user namespace of its own whose ids 0-65535 are host uids"))
        << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: userns sandbox nested in kiln's user namespace")) << run.output;
    EXPECT_FALSE(contains(run.output, "single-id user namespace")) << run.output;
    build_reference(pod_image("reference:5"));
    expect_same_image(pod_image("crio:1"), pod_image("reference:5"));
}

// Root with the default capabilities where seccomp lets user namespaces through: the userns sandbox.
TEST_F(PodTest, RootWithDefaultCapabilitiesAndUnconfinedSeccompBuildsInUsernsMode) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::docker_default, .seccomp = PodSeccomp::unconfined},
                              pod_image("unconfined:1"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: userns sandbox")) << run.output;
    build_reference(pod_image("reference:2"));
    expect_same_image(pod_image("unconfined:1"), pod_image("reference:2"));
}

// hostUsers: false: root in the pod's own user namespace, with the default capabilities there and RuntimeDefault.
// No nested user namespace and no mount: chroot mode, where mknod of devices is refused.
TEST_F(PodTest, RootInAPodUserNamespaceWithRuntimeDefaultSeccompBuilds) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::docker_default,
                                      .seccomp = PodSeccomp::runtime_default,
                                      .user_namespace = true,
                                      .host_id_base = 200000},
                              pod_image("hostusers:1"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: chroot sandbox")) << run.output;
    EXPECT_TRUE(contains(run.output, "this RUN's /dev/null is an empty regular file")) << run.output;
    build_reference(pod_image("reference:3"));
    expect_same_image(pod_image("hostusers:1"), pod_image("reference:3"));
}

// A non-root pod whose user has subordinate ids, where privilege escalation is allowed: newuidmap (with file
// capabilities in the executor image) maps the full range, and RUN steps give files any owner.
TEST_F(PodTest, NonRootWithSubordinateIdsBuildsInUsernsModeWithTheFullRange) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::docker_default,
                                      .seccomp = PodSeccomp::unconfined,
                                      .uid = 1000,
                                      .gid = 1000},
                              pod_image("nonroot:1"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "sandbox: userns sandbox nested in kiln's user namespace")) << run.output;
    EXPECT_FALSE(contains(run.output, "single-id user namespace")) << run.output;
    build_reference(pod_image("reference:4"));
    expect_same_image(pod_image("nonroot:1"), pod_image("reference:4"));
}

// A non-root pod without privilege escalation: newuidmap cannot work, so kiln's namespace maps its own id alone.
// The ownership supervisor pretends the steps' chown and user switches and records the owners, so the image is
// the same as the full range builds.
TEST_F(PodTest, NonRootWithNoNewPrivilegesBuildsWithASingleIdAndRecordedOwnership) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::docker_default,
                                      .seccomp = PodSeccomp::unconfined,
                                      .no_new_privileges = true,
                                      .uid = 1000,
                                      .gid = 1000},
                              pod_image("single:1"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "single-id user namespace")) << run.output;
    EXPECT_TRUE(contains(run.output, "a seccomp supervisor pretends chown and user switches")) << run.output;
    build_reference(pod_image("reference:6"));
    expect_same_image(pod_image("single:1"), pod_image("reference:6"));
}

// Pod Security "restricted": non-root, no privilege escalation, RuntimeDefault. No user namespace can be made and
// kiln is not root: a Dockerfile with RUN fails before anything is pulled, saying what would work.
TEST_F(PodTest, RestrictedPodFailsBeforePullingAndSaysWhatWouldWork) {
    PodRun run = build_in_pod(PodSpec{.capabilities = PodCapabilities::none,
                                      .seccomp = PodSeccomp::runtime_default,
                                      .no_new_privileges = true,
                                      .uid = 1000,
                                      .gid = 1000},
                              pod_image("restricted:1"));
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "no RUN sandbox works here")) << run.output;
    EXPECT_TRUE(contains(run.output, "Dockerfile:4")) << run.output;  // the first RUN
    EXPECT_TRUE(contains(run.output, "seccompProfile Unconfined")) << run.output;
    EXPECT_FALSE(contains(run.output, "FROM ")) << "something was resolved first:\n" << run.output;

    // A Dockerfile without RUN needs no sandbox: it builds here too.
    ASSERT_TRUE(write_file_atomic(m_workspace + "/context/Dockerfile", "ARG BASE\nFROM $BASE\nCOPY copied /copied\n"));
    run = build_in_pod(PodSpec{.capabilities = PodCapabilities::none,
                               .seccomp = PodSeccomp::runtime_default,
                               .no_new_privileges = true,
                               .uid = 1000,
                               .gid = 1000},
                       pod_image("restricted:2"));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    auto pushed = inspect_remote(pod_image("restricted:2"));
    EXPECT_TRUE(pushed) << (pushed ? "" : pushed.error().message());
}

// Each Tekton Task's build step, with Tekton's substitutions made as a TaskRun makes them, in the pod it claims to
// run in: it builds, pushes and writes every result.
TEST_F(PodTest, TheTasksBuildStepRunsInABaselinePod) {
    PodSpec spec{.capabilities = PodCapabilities::docker_default, .seccomp = PodSeccomp::runtime_default};
    std::string output = run_task_step("deploy/tekton/kiln.yaml", spec, pod_image("task:1"));
    EXPECT_TRUE(contains(output, "sandbox: chroot sandbox")) << output;
}

TEST_F(PodTest, TheRootlessTasksBuildStepRunsAsItsUserUnderItsLocalhostProfile) {
    PodSpec spec{.capabilities = PodCapabilities::docker_default,
                 .seccomp = PodSeccomp::localhost,
                 .localhost_profile = source_path("deploy/seccomp/kiln-userns.json"),
                 .uid = 1000,
                 .gid = 1000};
    std::string output = run_task_step("deploy/tekton/kiln-rootless.yaml", spec, pod_image("rootless-task:1"));
    EXPECT_TRUE(contains(output, "sandbox: userns sandbox nested in kiln's user namespace")) << output;
    EXPECT_FALSE(contains(output, "single-id user namespace")) << output;
}

}  // namespace
}  // namespace kiln::test
