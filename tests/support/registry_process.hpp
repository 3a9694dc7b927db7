#pragma once
// A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for one test: its own storage in a
// fresh temporary directory, a free port, no auth unless asked. Destroying it stops the process and removes the
// storage, so nothing is left behind when a test fails; the child also dies with the thread that started it.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/temp_dir.hpp"

namespace kiln::test {

struct RegistryProcessOptions {
    // The body of the config's `auth:` section (e.g. a `token:` block from TokenServer), empty for none. With
    // auth, the registry counts as ready when GET /v2/ answers 401 instead of 200.
    std::string auth_config;
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

    // Stops the process (SIGTERM, then SIGKILL after the grace period) and removes the storage.
    ~RegistryProcess();
    RegistryProcess(const RegistryProcess&) = delete;
    RegistryProcess& operator=(const RegistryProcess&) = delete;

    // "127.0.0.1:<port>": the registry part of references to this registry.
    const std::string& host_port() const { return m_host_port; }
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
    pid_t m_pid = -1;
    std::chrono::milliseconds m_stop_grace{5000};
};

}  // namespace kiln::test
