#pragma once
// Buildah (Debian's 1.28) as the reference builder that kiln's images are compared with: vfs storage and
// chroot isolation under a private temporary root, never the system's /var/lib/containers. Every command runs
// as the child of PID 1 in a fresh PID namespace (`unshare --pid --fork --kill-child`): chroot isolation
// leaves the background processes of a RUN step running after the build, and the namespace takes them down
// with it. Destroying the object removes every container, image and file that its buildah made.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/temp_dir.hpp"

namespace kiln::test {

struct BuildahBuild {
    std::string context;
    std::string dockerfile;
    // The local name the image gets ("localhost/corpus/case").
    std::string image;
    // NAME=VALUE, or NAME alone to take the value from `environment` as `docker build` does.
    std::vector<std::string> build_args;
    std::string target;       // empty: the last stage
    std::string ignore_file;  // --ignorefile: an ignore file other than the context's .dockerignore
    // Extra K=V entries for buildah's environment.
    std::vector<std::string> environment;
};

struct BuildahRun {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

class Buildah {
public:
    static constexpr std::string_view k_binary = "/usr/bin/buildah";

    // Why buildah cannot run here ("/usr/bin/buildah is not installed (scripts/setup installs it)"), or
    // nullopt.
    static std::optional<std::string> unavailable_reason();

    // A buildah with its storage in a new temporary directory under `parent`.
    static Result<std::unique_ptr<Buildah>> create(const std::string& parent);

    // Removes the storage with every image and container in it.
    ~Buildah();
    Buildah(const Buildah&) = delete;
    Buildah& operator=(const Buildah&) = delete;

    // `buildah bud` in Docker format (the OCI format drops ONBUILD, HEALTHCHECK and SHELL), one layer per
    // build (--layers=false), without buildah's io.buildah.version label (--identity-label=false), base
    // images pulled over plain HTTP. A failed build is a result with its exit code, not an error; failing to
    // run buildah is.
    Result<BuildahRun> build(const BuildahBuild& build);

    // Pushes the local `image` to `reference` over plain HTTP.
    Status push(const std::string& image, const std::string& reference);

    // Removes the local `image` (and its layers) to keep the storage small.
    Status remove_image(const std::string& image);

private:
    explicit Buildah(TempDir dir) : m_dir(std::move(dir)) {}
    Result<BuildahRun> run(const std::vector<std::string>& arguments,
                           const std::vector<std::string>& environment, std::chrono::seconds timeout);

    TempDir m_dir;
};

}  // namespace kiln::test
