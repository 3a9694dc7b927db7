#pragma once
// What kiln takes from the machine it runs on. HostEnvironment is what the CLI read from its own process (its
// environment variables, whether it entered a mount namespace of its own): nothing below the CLI calls getenv.
// HostFacts is what the build probed once, before its first stage: the RUN sandbox and the id map.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/sandbox/sandbox.hpp"
#include "layers/extract.hpp"
#include "registry/client.hpp"
#include "registry/credentials.hpp"

namespace kiln {

struct HostEnvironment {
    // The process's environment variables, as the CLI found them.
    std::map<std::string, std::string, std::less<>> variables;
    // Whether kiln runs in a mount namespace of its own, where it may mount overlays without them leaking to
    // the host, and if not, why.
    bool private_mount_namespace = false;
    std::string private_mount_namespace_error = "kiln did not enter a mount namespace of its own";
    // Why a non-root kiln runs outside a user namespace of its own (empty when it is root, or inside one): it
    // can then neither run RUN steps nor give files other owners.
    std::string build_user_namespace_error;
    // Where `--context tar://stdin` and `--dockerfile -` read.
    int stdin_fd = 0;
    // The Docker config that root opened for kiln re-executed as an unprivileged id (userns.hpp), or -1; or
    // that root found none.
    int handed_docker_config_fd = -1;
    std::string handed_docker_config_path;
    bool handed_no_docker_config = false;

    // A variable's value; nullopt when it is unset.
    std::optional<std::string> variable(std::string_view name) const;
    // What the registry credentials depend on: DOCKER_CONFIG, HOME and PATH.
    CredentialEnvironment credentials() const;
    // Where CA certificates are: SSL_CERT_FILE, SSL_CERT_DIR and Kaniko's /kaniko/ssl/certs.
    TrustEnvironment trust() const;
    // SOURCE_DATE_EPOCH, when it holds a number of seconds.
    std::optional<std::int64_t> source_date_epoch() const;
    // $TMPDIR, else /var/tmp: where work directories go by default.
    std::string temp_parent() const;
    // ${XDG_CACHE_HOME:-$HOME/.cache}/kiln, or a directory below temp_parent() when there is no home.
    std::string default_cache_dir() const;
    // How layer ownership that cannot be applied is treated (HostFacts::ownership), from this process's id map.
    OwnershipFailure ownership_policy() const;
};

struct HostFacts {
    // The RUN sandbox; null when none works here, and sandbox_error says why.
    const StepRunner* sandbox = nullptr;
    std::string sandbox_error;
    // Paths (absolute, in the image) that every RUN's layer leaves out: what the sandbox put in place for the
    // step where it could not mount it (chroot mode's /etc/hosts and /etc/resolv.conf).
    std::vector<std::string> run_left_out;
    // Layer ownership that cannot be applied: an error with a full id range, a warning in a single-id user
    // namespace, where every owner collapses to 0.
    OwnershipFailure ownership = OwnershipFailure::error;
};

}  // namespace kiln
