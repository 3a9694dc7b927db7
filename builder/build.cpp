#include "builder/build.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "builder/context.hpp"
#include "builder/output.hpp"
#include "builder/plan.hpp"
#include "builder/session.hpp"
#include "builder/stage_scheduler.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

// Logs how long each phase of the build took.
class PhaseTimer {
public:
    explicit PhaseTimer(std::string name) : m_name(std::move(name)), m_start(std::chrono::steady_clock::now()) {}
    ~PhaseTimer() {
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
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

RegistryClientOptions client_options(const RegistryAccess& access) {
    RegistryClientOptions options;
    if (access.plain_http) options.plain_http = RegistrySet::all();
    for (const std::string& registry : access.plain_http_registries) options.plain_http.add(registry);
    if (access.skip_tls_verify) options.skip_tls_verify = RegistrySet::all();
    for (const std::string& registry : access.skip_tls_verify_registries) options.skip_tls_verify.add(registry);
    options.attempts = 1 + std::max(access.retries, 1);
    return options;
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
    RegistryClient pull_client(client_options(options.pull));

    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    BuildSession session{.options = options,
                         .dockerfile = dockerfile,
                         .plan = plan,
                         .build_args = build_args,
                         .meta_args = meta_args,
                         .store = store,
                         .work_dir = work.path(),
                         .pull_client = pull_client,
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
        std::optional<RegistryClient> push_client;
        if (!options.no_push) push_client.emplace(client_options(options.push));
        KILN_TRY(write_outputs(options, destinations, image, documents, push_client ? &*push_client : nullptr));
    }
    if (options.keep_work_dir) log_info("kept the work directory ", work.release());

    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.2f",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count());
    log_info("built ", documents.manifest.digest.str(), " in ", seconds, " s");
    return BuildResult{.manifest_digest = documents.manifest.digest};
}

}  // namespace kiln
