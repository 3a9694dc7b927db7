// The Tekton Task in deploy/ is what pipelines run: its build step's arguments, with Tekton's substitutions
// made the way a TaskRun would make them, build and push an image and fill both results.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/integration/task_file.hpp"

namespace kiln::test {
namespace {

class DeployTaskTest : public RegistryBuildTest {};

// `text` without the characters of `chars` at either end.
std::string strip(std::string_view text, std::string_view chars) {
    size_t first = text.find_first_not_of(chars);
    if (first == std::string_view::npos) return "";
    return std::string(text.substr(first, text.find_last_not_of(chars) - first + 1));
}

// The Pod Security Standards' "baseline" level (kubernetes.io/docs/concepts/security/pod-security-standards),
// the rules a manifest written in block style can break, as a line scanner: one message per violation.
std::vector<std::string> baseline_violations(const std::string& text) {
    const std::vector<std::string> allowed_capabilities = {"AUDIT_WRITE", "CHOWN",            "DAC_OVERRIDE", "FOWNER",
                                                           "FSETID",      "KILL",             "MKNOD",        "NET_BIND_SERVICE",
                                                           "SETFCAP",     "SETGID",           "SETPCAP",      "SETUID",
                                                           "SYS_CHROOT"};
    std::vector<std::string> violations;
    std::istringstream in(text);
    std::string line;
    std::string profile;  // "seccompProfile" or "appArmorProfile" while inside one
    bool in_add = false;  // inside capabilities.add
    size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string content = std::string(trim(line));
        if (content.empty() || content.starts_with("#")) continue;
        auto violation = [&](const std::string& what) { violations.push_back(str_cat("line ", number, ": ", what)); };
        for (const char* forbidden : {"privileged: true", "hostNetwork: true", "hostPID: true", "hostIPC: true",
                                      "hostProcess: true"})
            if (content == forbidden) violation(forbidden);
        if (content.starts_with("hostPath:")) violation("a hostPath volume");
        if (content.starts_with("hostPort:")) violation("a hostPort");
        if (content.starts_with("procMount:") && content != "procMount: Default") violation(content);
        if (content.starts_with("sysctls:")) violation("sysctls (only the safe set is allowed; none is needed)");
        if (content.find("apparmor.security.beta.kubernetes.io") != std::string::npos &&
            content.find("unconfined") != std::string::npos)
            violation("an unconfined AppArmor annotation");
        if (content == "seccompProfile:" || content == "appArmorProfile:") profile = content;
        if (!profile.empty() && content.starts_with("type: ")) {
            if (content == "type: Unconfined") violation(str_cat(profile, " type: Unconfined"));
            profile.clear();
        }
        if (content.starts_with("add:")) {
            in_add = true;
            content = std::string(trim(content.substr(4)));
            for (const std::string& item : split(strip(content, "[] "), ','))
                if (std::string name = strip(item, " \"'"); !name.empty() &&
                    std::find(allowed_capabilities.begin(), allowed_capabilities.end(), name) == allowed_capabilities.end())
                    violation("capability " + name + " added");
            continue;
        }
        if (in_add && content.starts_with("- ")) {
            std::string name = strip(content.substr(2), " \"'");
            if (std::find(allowed_capabilities.begin(), allowed_capabilities.end(), name) == allowed_capabilities.end())
                violation("capability " + name + " added");
        } else {
            in_add = false;
        }
    }
    return violations;
}

TEST(DeployManifests, TheBaselineRulesCatchWhatTheyForbid) {
    EXPECT_EQ(baseline_violations("securityContext:\n  seccompProfile:\n    type: Unconfined\n").size(), 1u);
    EXPECT_EQ(baseline_violations("securityContext:\n  appArmorProfile:\n    type: Unconfined\n").size(), 1u);
    EXPECT_EQ(baseline_violations("  capabilities:\n    add: [\"SYS_ADMIN\"]\n").size(), 1u);
    EXPECT_EQ(baseline_violations("  capabilities:\n    add:\n      - NET_ADMIN\n").size(), 1u);
    EXPECT_EQ(baseline_violations("  privileged: true\n  hostPath:\n    path: /\n").size(), 2u);
    EXPECT_TRUE(baseline_violations("  seccompProfile:\n    type: RuntimeDefault\n  capabilities:\n    add: [SYS_CHROOT]\n")
                    .empty());
}

// The README's Pipeline uses the Task by its name and reads only results that the Task has.
TEST(DeployManifests, TheReadmesPipelineReadsResultsTheTaskHas) {
    auto readme = read_file(source_path("README.md"));
    auto task = read_file(source_path("deploy/tekton/kiln.yaml"));
    ASSERT_TRUE(readme && task);
    EXPECT_NE(readme->find("kind: Pipeline"), std::string::npos);
    EXPECT_NE(readme->find("$(tasks.build.results.IMAGE_URL)"), std::string::npos);
    size_t results = task->find("\n  results:\n");
    ASSERT_NE(results, std::string::npos);
    std::string results_section = task->substr(results, task->find("\n  volumes:", results) - results);
    const std::string marker = "$(tasks.build.results.";
    size_t used = 0;
    for (size_t at = readme->find(marker); at != std::string::npos; at = readme->find(marker, at + 1), ++used) {
        size_t start = at + marker.size();
        std::string name = readme->substr(start, readme->find(')', start) - start);
        EXPECT_NE(results_section.find("- name: " + name + "\n"), std::string::npos) << "no result " << name;
    }
    EXPECT_GE(used, 2u);
}

// The rootless Task is the same Task to a Pipeline: the same params, workspaces and results, word for word.
TEST(DeployManifests, TheRootlessTaskHasTheTasksParamsWorkspacesAndResults) {
    auto interface = [](const std::string& manifest) {
        std::string text = read_file(source_path(manifest)).value_or("");
        size_t start = text.find("\n  params:\n");
        size_t end = text.find("\n  volumes:\n");
        EXPECT_TRUE(start != std::string::npos && end != std::string::npos && start < end) << manifest;
        return start < end && end != std::string::npos ? text.substr(start, end - start) : "";
    };
    std::string task = interface("deploy/tekton/kiln.yaml");
    EXPECT_NE(task.find("name: IMAGE_DIGEST"), std::string::npos);
    EXPECT_EQ(interface("deploy/tekton/kiln-rootless.yaml"), task);
}

// The Tasks and the Job ask for nothing that Pod Security "baseline" refuses, as the catalog Kaniko Task does not
// (the rootless Task's seccomp profile is a Localhost one, which baseline admits).
TEST(DeployManifests, TheTasksAndTheJobAreAdmittedUnderBaseline) {
    for (const char* manifest :
         {"deploy/tekton/kiln.yaml", "deploy/tekton/kiln-rootless.yaml", "deploy/kubernetes/kiln-job.yaml"}) {
        auto text = read_file(source_path(manifest));
        ASSERT_TRUE(text) << text.error().message();
        EXPECT_EQ(join(baseline_violations(*text), "\n"), "") << manifest;
    }
}

TEST_F(DeployTaskTest, TheBuildStepsArgumentsPushTheImageAndWriteEveryResult) {
    auto text = read_file(source_path("deploy/tekton/kiln.yaml"));
    ASSERT_TRUE(text) << text.error().message();
    TaskFile task = read_task(*text, "build-and-push");
    ASSERT_FALSE(task.step.args.empty()) << "no args found for the build-and-push step";
    ASSERT_TRUE(task.defaults.contains("DOCKERFILE") && task.defaults.contains("CONTEXT"));

    // The source workspace, as a TaskRun would bind it, with the Dockerfile where the defaults say.
    std::string workspace = m_dir.path() + "/source";
    std::string results = m_dir.path() + "/results";
    ASSERT_TRUE(make_directories(workspace));
    ASSERT_TRUE(make_directories(results));
    ASSERT_TRUE(write_file_atomic(workspace + "/" + task.defaults["DOCKERFILE"],
                                  "ARG BASE\nFROM $BASE\nRUN echo built by the Task > /built\n"));
    std::string image = reference("pipeline/app:1");
    std::map<std::string, std::string> substitutions = {
        {"$(workspaces.source.path)", workspace},
        {"$(params.DOCKERFILE)", task.defaults["DOCKERFILE"]},
        {"$(params.CONTEXT)", task.defaults["CONTEXT"]},
        {"$(params.IMAGE)", image},
        {"$(results.IMAGE_DIGEST.path)", results + "/IMAGE_DIGEST"},
        {"$(results.IMAGE_URL.path)", results + "/IMAGE_URL"},
        {"$(results.IMAGE_REF.path)", results + "/IMAGE_REF"},
    };
    std::vector<std::string> args;
    for (std::string arg : task.step.args) {
        if (arg == "$(params.EXTRA_ARGS[*])") {
            // What a pipeline against this plain-HTTP test registry passes.
            for (const char* extra : {"--insecure", "--insecure-pull"}) args.emplace_back(extra);
            args.push_back("--build-arg=BASE=" + base());
            continue;
        }
        for (const auto& [from, to] : substitutions) arg = replace_all(arg, from, to);
        // Volumes the step mounts are directories of the test's own.
        for (const auto& [name, mount_path] : task.step.volume_mounts) {
            std::string local = m_dir.path() + "/volume-" + name;
            ASSERT_TRUE(make_directories(local));
            if (arg.ends_with("=" + mount_path)) arg = arg.substr(0, arg.size() - mount_path.size()) + local;
        }
        ASSERT_EQ(arg.find("$("), std::string::npos) << "a substitution the test does not make: " << arg;
        args.push_back(arg);
    }

    // The step's workingDir is the source workspace.
    KilnRun run = run_kiln(args, {"env", "-C", workspace});
    ASSERT_EQ(run.exit_code, 0) << run.output;

    auto digest = read_file(results + "/IMAGE_DIGEST");
    ASSERT_TRUE(digest) << digest.error().message();
    auto url = read_file(results + "/IMAGE_URL");
    ASSERT_TRUE(url) << url.error().message();
    EXPECT_EQ(*url, image);
    auto pushed = inspect_remote(image);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(*digest, (*pushed)["Digest"].get<std::string>());
    // IMAGE_REF pins the repository by digest, with no newline that a consumer would carry along.
    auto ref = read_file(results + "/IMAGE_REF");
    ASSERT_TRUE(ref) << ref.error().message();
    EXPECT_EQ(*ref, reference("pipeline/app") + "@" + *digest);
}

}  // namespace
}  // namespace kiln::test
