#include "tests/support/buildah.hpp"

#include <unistd.h>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

constexpr std::chrono::seconds k_build_timeout{300};
constexpr std::chrono::seconds k_command_timeout{120};

}  // namespace

std::optional<std::string> Buildah::unavailable_reason() {
    if (::access(std::string(k_binary).c_str(), X_OK) != 0)
        return str_cat(k_binary, " is not installed (scripts/setup installs it)");
    for (const char* tool : {"/usr/bin/unshare", "/usr/bin/timeout"})
        if (::access(tool, X_OK) != 0) return str_cat(tool, " is not installed");
    // Rootless buildah needs subordinate ids and a user namespace of its own; the tests run it as root only.
    if (::geteuid() != 0) return std::string("buildah comparisons need root (chroot isolation, vfs storage)");
    return std::nullopt;
}

Result<std::unique_ptr<Buildah>> Buildah::create(const std::string& parent) {
    KILN_ASSIGN(TempDir dir, TempDir::create(parent, "buildah-"));
    KILN_TRY(make_directories(dir.path() + "/tmp"));
    return std::unique_ptr<Buildah>(new Buildah(std::move(dir)));
}

Buildah::~Buildah() {
    // Nothing to ask buildah: vfs layers and containers are plain directories under the storage root, and
    // every buildah command ran in a mount namespace of its own (unshare), so nothing is mounted. TempDir's
    // destructor removes the storage, including the directories that images made read-only.
}

Result<BuildahRun> Buildah::run(const std::vector<std::string>& arguments,
                                const std::vector<std::string>& environment, std::chrono::seconds timeout) {
    const std::string& dir = m_dir.path();
    std::vector<std::string> argv = {"timeout",
                                     "--kill-after=10",
                                     str_cat(timeout.count()),
                                     "unshare",
                                     "--mount",
                                     "--pid",
                                     "--fork",
                                     "--kill-child",
                                     "--mount-proc",
                                     std::string(k_binary),
                                     "--root",
                                     dir + "/root",
                                     "--runroot",
                                     dir + "/run",
                                     "--storage-driver",
                                     "vfs"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    ProcessOptions options;
    // A clean environment: the caller's CONTAINERS_*/BUILDAH_* variables must not reconfigure it, and its
    // temporary files stay in the private directory.
    options.environment = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir,
                           "TMPDIR=" + dir + "/tmp", "BUILDAH_ISOLATION=chroot"};
    options.environment.insert(options.environment.end(), environment.begin(), environment.end());
    KILN_ASSIGN(ProcessResult result, run_process(argv, options));
    if (result.exit_code == 124 || result.exit_code == 128 + 9)
        return fail(str_cat("buildah ", arguments.empty() ? "" : arguments[0], " timed out after ",
                            timeout.count(), " s: ", result.stdout_bytes, result.stderr_bytes));
    return BuildahRun{result.exit_code, result.stdout_bytes + result.stderr_bytes};
}

Result<BuildahRun> Buildah::build(const BuildahBuild& build) {
    std::vector<std::string> arguments = {"bud",
                                          "--isolation",
                                          "chroot",
                                          "--format",
                                          "docker",
                                          "--layers=false",
                                          "--identity-label=false",
                                          "--tls-verify=false",
                                          "--file",
                                          build.dockerfile,
                                          "--tag",
                                          build.image};
    for (const std::string& arg : build.build_args) {
        arguments.push_back("--build-arg");
        arguments.push_back(arg);
    }
    if (!build.ignore_file.empty()) {
        arguments.push_back("--ignorefile");
        arguments.push_back(build.ignore_file);
    }
    if (!build.target.empty()) {
        arguments.push_back("--target");
        arguments.push_back(build.target);
    }
    arguments.push_back(build.context);
    return run(arguments, build.environment, k_build_timeout);
}

Status Buildah::push(const std::string& image, const std::string& reference) {
    KILN_ASSIGN(BuildahRun run,
                this->run({"push", "--quiet", "--tls-verify=false", image, "docker://" + reference}, {},
                          k_command_timeout));
    if (run.exit_code != 0)
        return fail(str_cat("buildah push ", reference, " exited with ", run.exit_code, ": ", run.output));
    return {};
}

Status Buildah::remove_image(const std::string& image) {
    KILN_ASSIGN(BuildahRun run, this->run({"rmi", "--force", image}, {}, k_command_timeout));
    if (run.exit_code != 0)
        return fail(str_cat("buildah rmi ", image, " exited with ", run.exit_code, ": ", run.output));
    return {};
}

}  // namespace kiln::test
