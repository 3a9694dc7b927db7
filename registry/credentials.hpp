#pragma once
// Credentials from Docker's config.json, read the way the docker CLI (and Kaniko) read them: `credHelpers` (a
// helper per registry) first, then `credsStore` (the default helper), then `auths` (`auth` = base64
// "user:pass", `username`/`password`, `identitytoken`). Helpers are `docker-credential-<name> get` programs.
// Secrets never appear in logs or error messages.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "registry/auth.hpp"

namespace kiln {

// The process environment the credentials depend on, passed in rather than read with getenv so that tests (and
// callers) decide what the provider sees.
struct CredentialEnvironment {
    std::string docker_config;  // $DOCKER_CONFIG; empty when unset
    std::string home;           // $HOME; empty when unset
    std::string path;           // $PATH, where docker-credential-<name> programs are looked up
    // Kaniko's default, tried when neither of the above has a config.json.
    std::string kaniko_config = "/kaniko/.docker/config.json";
    // The first of the candidates that exists, opened by a process that could read it for this one, which may
    // not (root's kiln re-executed as an unprivileged id, userns.hpp): read from this inherited descriptor
    // instead, and named as `handed_config_path`. -1: none. `handed_no_config`: that process found none of them,
    // so there are none to read.
    int handed_config_fd = -1;
    std::string handed_config_path;
    bool handed_no_config = false;

    // The current process's values: for the CLI, which owns the environment.
    static CredentialEnvironment of_this_process();
};

// The config.json paths looked at, in order: $DOCKER_CONFIG's, or $HOME's and then Kaniko's.
std::vector<std::string> docker_config_candidates(const CredentialEnvironment& environment);

// "docker.io" for Docker Hub's aliases ("https://index.docker.io/v1/", "registry-1.docker.io", …), otherwise the
// lowercased host[:port] of a config.json key or server URL ("http://host:5000/v2/" → "host:5000").
std::string normalize_registry_key(std::string_view key);

// What a credential helper is given on stdin for `registry`: "https://index.docker.io/v1/" for Docker Hub, the
// host[:port] otherwise.
std::string credential_helper_server_url(std::string_view registry);

// Bounds on one `docker-credential-<name> get`.
struct CredentialHelperLimits {
    std::chrono::milliseconds timeout{60000};
    size_t output_limit = 1 << 20;
};

class DockerConfigCredentials final : public CredentialProvider {
public:
    // $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set (and only it); otherwise the first of
    // $HOME/.docker/config.json and Kaniko's /kaniko/.docker/config.json that exists. No file: anonymous for
    // every registry. A file that exists but cannot be read or parsed is an error.
    static Result<std::shared_ptr<DockerConfigCredentials>> from_environment(const CredentialEnvironment& environment);
    // Parses one config.json; a malformed file is an error naming the file and the offending key, never a value.
    // Helpers are looked up in `helper_path` (a PATH value).
    static Result<std::shared_ptr<DockerConfigCredentials>> from_file(const std::string& path,
                                                                      std::string helper_path = "");
    // Parses config.json text; `source` names it in errors and in source().
    static Result<std::shared_ptr<DockerConfigCredentials>> from_json(std::string_view text, std::string source,
                                                                      std::string helper_path = "");

    // The credential for `registry` ("docker.io", "host:port"), nullopt for anonymous. Thread-safe; each registry
    // is looked up (and its helper run) once.
    Result<std::optional<Credential>> credential_for(std::string_view registry) override;

    // Where the credentials came from, for a log line ("/kaniko/.docker/config.json"); empty if none.
    const std::string& source() const { return m_source; }

    // Replaces the bounds on helper runs (tests shorten them).
    void set_helper_limits(CredentialHelperLimits limits) { m_helper_limits = limits; }

private:
    struct AuthEntry {
        std::string key;  // as written in config.json, for messages
        Credential credential;
    };

    DockerConfigCredentials() = default;
    // The helper name configured for `registry` (normalized), empty when none.
    std::string helper_for(const std::string& registry) const;
    std::optional<Credential> from_auths(const std::string& registry) const;
    Result<std::optional<Credential>> run_helper(const std::string& helper, const std::string& registry) const;

    std::string m_source;
    std::string m_helper_path;
    CredentialHelperLimits m_helper_limits;
    std::map<std::string, std::vector<AuthEntry>, std::less<>> m_auths;  // by normalized registry, in key order
    std::map<std::string, std::string, std::less<>> m_cred_helpers;      // normalized registry → helper name
    std::string m_creds_store;

    // Serializes lookups, so that concurrent requests for one registry run its helper once.
    std::mutex m_lookup_mutex;
    std::map<std::string, std::optional<Credential>, std::less<>> m_cache;
};

}  // namespace kiln
