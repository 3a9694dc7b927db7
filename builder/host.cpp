#include "builder/host.hpp"

#include <unistd.h>

#include "builder/sandbox/id_map.hpp"
#include "common/strings.hpp"

namespace kiln {

std::optional<std::string> HostEnvironment::variable(std::string_view name) const {
    auto found = variables.find(name);
    if (found == variables.end()) return std::nullopt;
    return found->second;
}

CredentialEnvironment HostEnvironment::credentials() const {
    return {.docker_config = variable("DOCKER_CONFIG").value_or(""),
            .home = variable("HOME").value_or(""),
            .path = variable("PATH").value_or(""),
            .handed_config_fd = handed_docker_config_fd,
            .handed_config_path = handed_docker_config_path,
            .handed_no_config = handed_no_docker_config};
}

TrustEnvironment HostEnvironment::trust() const {
    return {.ssl_cert_file = variable("SSL_CERT_FILE").value_or(""),
            .ssl_cert_dir = variable("SSL_CERT_DIR").value_or(""),
            .kaniko_certs = "/kaniko/ssl/certs"};
}

std::optional<std::int64_t> HostEnvironment::source_date_epoch() const {
    std::optional<std::string> text = variable("SOURCE_DATE_EPOCH");
    std::uint64_t value = 0;
    if (!text || !parse_uint64(*text, value)) return std::nullopt;
    return static_cast<std::int64_t>(value);
}

std::string HostEnvironment::temp_parent() const {
    std::optional<std::string> tmpdir = variable("TMPDIR");
    return tmpdir && !tmpdir->empty() ? *tmpdir : "/var/tmp";
}

std::string HostEnvironment::default_cache_dir() const {
    std::optional<std::string> xdg = variable("XDG_CACHE_HOME");
    if (xdg && xdg->starts_with('/')) return *xdg + "/kiln";
    std::optional<std::string> home = variable("HOME");
    if (home && home->starts_with('/')) return *home + "/.cache/kiln";
    return str_cat(temp_parent(), "/kiln-cache-", ::getuid());
}

OwnershipFailure HostEnvironment::ownership_policy() const {
    auto map = read_own_id_map("uid_map");
    bool single_id = map && id_count(*map) < k_container_id_count;
    // A non-root kiln that could not enter a user namespace of its own cannot give files other owners.
    return single_id || !build_user_namespace_error.empty() ? OwnershipFailure::warn_once : OwnershipFailure::error;
}

}  // namespace kiln
