#include "builder/sources/registry_access.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <string_view>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/http.hpp"

namespace kiln {

namespace {

constexpr std::string_view k_pem_certificate = "-----BEGIN CERTIFICATE-----";
constexpr size_t k_max_certificate_file = 4 << 20;

void append_pem(std::string& bundle, const std::string& pem) {
    bundle += pem;
    if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
}

// The PEM files of `dir`, by name; links (as c_rehash makes) are followed, other entries skipped.
Result<std::string> certificates_in(const std::string& dir, std::string_view what) {
    std::error_code error;
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
        if (!entry.is_regular_file(error)) continue;
        names.push_back(entry.path().filename().string());
    }
    if (error) return fail(str_cat(what, " ", dir, ": ", error.message()));
    std::sort(names.begin(), names.end());
    std::string bundle;
    std::set<std::string> seen;  // c_rehash links name the same certificate twice
    for (const std::string& name : names) {
        auto pem = read_file(dir + "/" + name, k_max_certificate_file);
        if (!pem || pem->find(k_pem_certificate) == std::string::npos || !seen.insert(*pem).second) continue;
        append_pem(bundle, *pem);
    }
    return bundle;
}

// Whether `path` is `system`, which curl trusts anyway: adding it again would only make each TLS handshake parse
// the system's certificates twice, and reading SSL_CERT_DIR's few hundred files costs a build about 50 ms.
bool is_system_trust(const std::string& path, const std::string& system) {
    std::error_code error;
    return !system.empty() && std::filesystem::equivalent(path, system, error) && !error;
}

}  // namespace

Result<std::string> trusted_certificates(const TrustEnvironment& trust) {
    std::string bundle;
    const SystemTrust& system = system_trust();
    if (is_system_trust(trust.ssl_cert_file, system.file)) {
        log_debug("SSL_CERT_FILE=", trust.ssl_cert_file, " is the system's CA bundle, trusted already");
    } else if (!trust.ssl_cert_file.empty()) {
        KILN_ASSIGN(std::string pem, with_context(read_file(trust.ssl_cert_file, 16 << 20),
                                                  "SSL_CERT_FILE=" + trust.ssl_cert_file));
        if (pem.find(k_pem_certificate) == std::string::npos)
            return fail(str_cat("SSL_CERT_FILE=", trust.ssl_cert_file, ": no PEM certificate in the file"));
        append_pem(bundle, pem);
    }
    if (is_system_trust(trust.ssl_cert_dir, system.directory)) {
        log_debug("SSL_CERT_DIR=", trust.ssl_cert_dir, " is the system's CA directory, trusted already");
    } else if (!trust.ssl_cert_dir.empty()) {
        KILN_ASSIGN(std::string pem, certificates_in(trust.ssl_cert_dir, "SSL_CERT_DIR"));
        append_pem(bundle, pem);
    }
    if (!trust.kaniko_certs.empty() && trust.kaniko_certs != trust.ssl_cert_dir &&
        std::filesystem::is_directory(trust.kaniko_certs)) {
        KILN_ASSIGN(std::string pem, certificates_in(trust.kaniko_certs, "Kaniko's certificate directory"));
        append_pem(bundle, pem);
    }
    return bundle;
}

HttpTimeouts transfer_timeouts(const RegistrySettings& settings) {
    HttpTimeouts timeouts;
    timeouts.stall = std::chrono::seconds(settings.stall_timeout_seconds);
    timeouts.min_rate = settings.min_transfer_rate;
    timeouts.deadline = settings.transfer_deadline;
    return timeouts;
}

Result<RegistryClientOptions> shared_client_options(const RegistrySettings& settings,
                                                    const CredentialEnvironment& environment,
                                                    const TrustEnvironment& trust) {
    RegistryClientOptions options;
    KILN_ASSIGN(options.trusted_ca_pem, trusted_certificates(trust));
    for (const auto& [registry, path] : settings.certificates) {
        KILN_ASSIGN(std::string pem, with_context(read_file(path, 4 << 20),
                                                  str_cat("--registry-certificate ", registry, "=", path)));
        if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
            return fail(str_cat("--registry-certificate ", registry, "=", path, ": no PEM certificate in the file"));
        std::string& bundle = options.tls[canonical_registry(registry)].extra_ca_pem;
        bundle += pem;
        if (bundle.back() != '\n') bundle += '\n';
    }
    for (const auto& [registry, files] : settings.client_certificates) {
        for (const std::string& path : {files.first, files.second})
            if (!path_exists(path))
                return fail(str_cat("--registry-client-cert ", registry, ": ", path, " does not exist"));
        options.tls[canonical_registry(registry)].client_certificate =
            ClientCertificate{.certificate_path = files.first, .key_path = files.second};
    }
    KILN_ASSIGN(auto credentials, DockerConfigCredentials::from_environment(environment));
    if (!credentials->source().empty()) log_debug("registry credentials from ", credentials->source());
    options.credentials = std::move(credentials);
    options.timeouts = transfer_timeouts(settings);
    options.retry.window = settings.retry_window;
    return options;
}

RegistryClientOptions client_options(RegistryClientOptions options, const RegistryAccess& access) {
    if (access.plain_http) options.plain_http = RegistrySet::all();
    for (const std::string& registry : access.plain_http_registries) options.plain_http.add(registry);
    if (access.skip_tls_verify) options.skip_tls_verify = RegistrySet::all();
    for (const std::string& registry : access.skip_tls_verify_registries) options.skip_tls_verify.add(registry);
    options.retry.attempts = 1 + std::max(access.retries, 0);
    return options;
}

Result<RegistryRoutes> registry_routes(const RegistrySettings& settings) {
    RegistryRoutes routes;
    for (const std::string& mirror : settings.mirrors) KILN_TRY(routes.add_mirror(mirror));
    for (const std::string& map : settings.maps) KILN_TRY(routes.add_map(map));
    routes.set_fallback(settings.default_fallback);
    return routes;
}

}  // namespace kiln
