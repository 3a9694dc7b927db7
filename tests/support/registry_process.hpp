#pragma once
// A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for one test: its own storage in a
// fresh temporary directory, a free port, plain HTTP and no auth unless asked (TLS, mTLS, htpasswd or token auth,
// pull-through proxy). Destroying it stops the process and removes the storage, so nothing is left behind when a
// test fails; the child also dies with the thread that started it.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/temp_dir.hpp"

namespace kiln::test {

struct RegistryProcessOptions {
    // The body of the config's `auth:` section (a `token:` block from TokenServer, an `htpasswd:` block from
    // htpasswd_auth_config), empty for none. With auth, the registry counts as ready when GET /v2/ answers 401.
    std::string auth_config;
    // PEM files for HTTPS (distribution's http.tls.certificate and key; TestPki makes them). Both or neither.
    std::string tls_certificate;
    std::string tls_key;
    // A CA whose client certificates the registry demands (http.tls.clientcas: mTLS). Needs the two above.
    std::string tls_client_ca;
    // Makes the registry a pull-through cache of this registry ("http://127.0.0.1:5000"; distribution's
    // proxy.remoteurl). Such a registry refuses pushes.
    std::string proxy_remote_url;
    // How long to wait for GET /v2/ to answer.
    std::chrono::milliseconds startup_timeout{20000};
    // How long SIGTERM may take before SIGKILL.
    std::chrono::milliseconds stop_grace{5000};
};

class RegistryProcess {
public:
    static constexpr std::string_view k_binary = "/usr/bin/docker-registry";

    // Why no registry can be started here ("unavailable: /usr/bin/docker-registry is not installed"), or nullopt
    // when one can. Tests GTEST_SKIP() with this reason.
    static std::optional<std::string> unavailable_reason();

    // Starts a registry and waits until it answers. The error carries the registry's log.
    static Result<std::unique_ptr<RegistryProcess>> start(const RegistryProcessOptions& options = {});

    // Writes an htpasswd file (bcrypt, as distribution requires) for `users` (name, password) into `dir` with
    // /usr/bin/htpasswd, and returns the `htpasswd:` block for RegistryProcessOptions::auth_config. The error
    // says when htpasswd (apache2-utils) is missing; tests skip on htpasswd_unavailable_reason() first.
    static Result<std::string> htpasswd_auth_config(const std::string& dir,
                                                    const std::vector<std::pair<std::string, std::string>>& users);
    // Why htpasswd files cannot be made here, or nullopt.
    static std::optional<std::string> htpasswd_unavailable_reason();

    // Stops the process (SIGTERM, then SIGKILL after the grace period) and removes the storage.
    ~RegistryProcess();
    RegistryProcess(const RegistryProcess&) = delete;
    RegistryProcess& operator=(const RegistryProcess&) = delete;

    // "127.0.0.1:<port>": the registry part of references to this registry.
    const std::string& host_port() const { return m_host_port; }
    // Whether it serves HTTPS (tls_certificate was given).
    bool tls() const { return m_tls; }
    // "https" or "http".
    std::string_view scheme() const { return m_tls ? "https" : "http"; }
    // "<scheme>://127.0.0.1:<port><path>".
    std::string url(std::string_view path) const;
    std::uint16_t port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    // The filesystem driver's root directory; blobs live under docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data.
    const std::string& storage_dir() const { return m_storage_dir; }
    // Where the registry keeps the bytes of blob `digest` ("sha256:<hex>"); tests overwrite it to corrupt a blob.
    std::string blob_data_path(std::string_view digest) const;
    // Everything the registry has logged so far.
    std::string log() const;

    // Stops the registry now; the destructor then only removes the storage. Idempotent.
    void stop();

private:
    RegistryProcess() = default;
    static Result<std::unique_ptr<RegistryProcess>> start_on_free_port(const RegistryProcessOptions& options);
    Status wait_until_ready(const RegistryProcessOptions& options);

    TempDir m_dir;
    std::string m_storage_dir;
    std::string m_log_path;
    std::string m_host_port;
    std::uint16_t m_port = 0;
    bool m_tls = false;
    pid_t m_pid = -1;
    std::chrono::milliseconds m_stop_grace{5000};
};

}  // namespace kiln::test
