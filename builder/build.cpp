#include "builder/build.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>
#include <thread>

#include "builder/sources/context.hpp"
#include "builder/output.hpp"
#include "builder/plan/plan.hpp"
#include "builder/session.hpp"
#include "builder/stage_scheduler.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "registry/credentials.hpp"
#include "registry/mirrors.hpp"
#include "registry/transfer.hpp"

namespace kiln {
namespace {

// Logs how long each phase of the build took.
class PhaseTimer {
public:
    explicit PhaseTimer(std::string name) : m_name(std::move(name)), m_start(std::chrono::steady_clock::now()) {}
    ~PhaseTimer() {
        double seconds = seconds_since(m_start);
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", seconds);
        log_debug("phase ", m_name, ": ", text, " s");
    }

private:
    std::string m_name;
    std::chrono::steady_clock::time_point m_start;
};

// Kaniko's rule: the Dockerfile as given if it exists, else relative to the context.
std::string resolve_dockerfile_path(const BuildOptions& options) {
    if (options.dockerfile.starts_with("/") || path_exists(options.dockerfile)) return options.dockerfile;
    return options.context_dir + "/" + options.dockerfile;
}

// The TLS material, credentials and limits shared by the pull and the push client.
Result<RegistryClientOptions> shared_client_options(const BuildOptions& build) {
    const RegistrySettings& settings = build.registries;
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
    KILN_ASSIGN(auto credentials, DockerConfigCredentials::from_environment(CredentialEnvironment::of_this_process()));
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

// Kaniko's probe: a build that cannot be pushed fails before it starts, not after an hour of RUN steps.
Status check_push_permissions(RegistryClient& client, const std::vector<Reference>& destinations) {
    std::set<std::string> checked;
    for (const Reference& destination : destinations) {
        if (!checked.insert(destination.name()).second) continue;
        KILN_TRY_CONTEXT(client.check_push_permission(destination),
                         str_cat("--destination ", destination.str(), " (skip this check with "
                                                                      "--skip-push-permission-check)"));
    }
    return {};
}

std::int64_t source_date_epoch() {
    const char* text = std::getenv("SOURCE_DATE_EPOCH");
    std::uint64_t value = 0;
    return text && parse_uint64(text, value) ? static_cast<std::int64_t>(value) : 0;
}

}  // namespace

Result<BuildResult> run_build(const BuildOptions& options) {
    auto build_start = std::chrono::steady_clock::now();
    KILN_ASSIGN(std::vector<Reference> destinations, parse_destinations(options));

    std::string dockerfile_path = resolve_dockerfile_path(options);
    dockerfile::Dockerfile dockerfile;
    {
        PhaseTimer timer("parse");
        KILN_ASSIGN(std::string text, with_context(read_file(dockerfile_path, 16 << 20), "reading the Dockerfile"));
        KILN_ASSIGN(dockerfile, dockerfile::parse_dockerfile(text, dockerfile_path));
        for (const auto& warning : dockerfile.warnings) log_warn(dockerfile_path, ":", warning.line, ": ", warning.message);
        // kiln has one built-in frontend: the directives are accepted and noted, not acted on.
        if (dockerfile.syntax) log_info("# syntax=", *dockerfile.syntax, " noted: kiln builds with its own Dockerfile frontend");
        if (dockerfile.check) log_info("# check=", *dockerfile.check, " noted: kiln runs no build checks");
    }

    BuildArgs build_args(options.build_args);
    BuildPlatforms platforms{.target = options.custom_platform.value_or(host_platform()), .build = host_platform()};
    KILN_ASSIGN(MetaArgs meta_args, MetaArgs::evaluate(dockerfile, build_args, platforms));
    BuildPlan plan;
    {
        PhaseTimer timer("plan");
        KILN_ASSIGN(plan, plan_build(dockerfile, meta_args, options.target));
    }

    std::string work_parent = options.work_dir_parent.empty() ? default_temp_parent() : options.work_dir_parent;
    KILN_TRY_CONTEXT(make_directories(work_parent, 0755), "--work-dir");
    KILN_ASSIGN(TempDir work, TempDir::create(work_parent, "kiln-build-"));
    KILN_ASSIGN(BlobStore store, BlobStore::open(work.path() + "/store"));
    KILN_ASSIGN(BuildContext context, BuildContext::open(options.context_dir, dockerfile_path));
    KILN_ASSIGN(RegistryClientOptions registry_options, shared_client_options(options));
    KILN_ASSIGN(RegistryRoutes routes, registry_routes(options.registries));
    RegistryClient pull_client(client_options(registry_options, options.pull));
    std::optional<RegistryClient> push_client;
    if (!options.no_push) {
        push_client.emplace(client_options(registry_options, options.push));
        if (options.registries.check_push_permission) {
            PhaseTimer timer("push permission");
            KILN_TRY(check_push_permissions(*push_client, destinations));
        }
    }

    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    BuildSession session{.options = options,
                         .dockerfile = dockerfile,
                         .plan = plan,
                         .build_args = build_args,
                         .meta_args = meta_args,
                         .store = store,
                         .work_dir = work.path(),
                         .pull_client = pull_client,
                         .routes = routes,
                         .context = context,
                         .platform = platforms.target,
                         .created_seconds = options.reproducible ? source_date_epoch() : now,
                         .layer_timestamp = options.reproducible ? std::optional(source_date_epoch()) : std::nullopt};

    {
        Result<const Sandbox*> sandbox = options.snapshotter == Snapshotter::walk
                                             ? Result<const Sandbox*>(nullptr)
                                             : session.sandbox();
        KILN_ASSIGN(session.snapshotter, choose_snapshotter(options, work.path(), sandbox));
        log_info("snapshotter: ", session.snapshotter.overlay ? "overlay" : "walk", " (",
                 session.snapshotter.reason, ")");
        if (session.snapshotter.overlay)
            session.layer_directories = std::make_unique<LayerDirectories>(work.path() + "/layers");
    }
    {
        PhaseTimer timer("stages");
        KILN_TRY(build_stages(session, std::max(2u, std::thread::hardware_concurrency())));
    }
    for (const std::string& unused : build_args.unused())
        log_warn("build argument ", unused, " was given but not declared by any ARG in ", dockerfile_path);

    Image image = session.completed.at(plan.target).image;
    ImageConfig config = image.config();
    config.created = format_rfc3339(session.created_seconds);
    for (const auto& [key, value] : options.labels) config.config.labels[key] = value;
    image = image.with_config(std::move(config));
    KILN_ASSIGN(ImageDocuments documents, write_image_documents(image, options.manifest_format, store));
    log_info("image ", documents.manifest.digest.str(), ": ", image.layers().size(), " layer(s)");

    {
        PhaseTimer timer("output");
        PushOptions push{{.jobs = options.registries.transfer_jobs}, session.blob_origins()};
        KILN_TRY(write_outputs(options, destinations, image, documents, push_client ? &*push_client : nullptr, push));
    }
    if (options.keep_work_dir) log_info("kept the work directory ", work.release());

    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.2f",
                  seconds_since(build_start));
    log_info("built ", documents.manifest.digest.str(), " in ", seconds, " s");
    return BuildResult{.manifest_digest = documents.manifest.digest};
}

}  // namespace kiln
