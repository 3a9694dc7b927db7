#pragma once
// How kiln reaches registries, from the flags: the TLS material, credentials and limits every client shares,
// the pull and push clients' own schemes and retries, and the mirrors and maps pulls go through. Any command
// that talks to registries (`kiln build`, `kiln warm`) sets its clients up here.

#include "builder/options.hpp"
#include "common/error.hpp"
#include "registry/client.hpp"
#include "registry/credentials.hpp"
#include "registry/mirrors.hpp"

namespace kiln {

// The CA certificates `trust` names, concatenated: SSL_CERT_FILE, each PEM file of SSL_CERT_DIR and of Kaniko's
// directory (files holding no certificate are skipped). A variable naming a file or directory that cannot be
// read is an error that names it.
Result<std::string> trusted_certificates(const TrustEnvironment& trust);

// --registry-stall-timeout, --min-transfer-rate and --transfer-deadline, for registry clients and downloads.
HttpTimeouts transfer_timeouts(const RegistrySettings& settings);

// What pull and push clients share: --registry-certificate, --registry-client-cert, config.json credentials
// (found through `environment`), the CA certificates of `trust` for every registry, the transfer timeouts
// and --registry-retry-window. Errors name the flag and the file.
Result<RegistryClientOptions> shared_client_options(const RegistrySettings& settings,
                                                    const CredentialEnvironment& environment,
                                                    const TrustEnvironment& trust = {});

// `shared` for one direction: --insecure*, --skip-tls-verify* and the retries of `access`.
RegistryClientOptions client_options(RegistryClientOptions shared, const RegistryAccess& access);

// --registry-mirror and --registry-map, and whether the registry itself is tried after them.
Result<RegistryRoutes> registry_routes(const RegistrySettings& settings);

}  // namespace kiln
