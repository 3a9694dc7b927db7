#include "builder/sources/registry_access.hpp"

#include <algorithm>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

Result<RegistryClientOptions> shared_client_options(const RegistrySettings& settings,
                                                    const CredentialEnvironment& environment) {
    RegistryClientOptions options;
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
    options.timeouts.stall = std::chrono::seconds(settings.stall_timeout_seconds);
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
