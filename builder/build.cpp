#include "builder/build.hpp"

#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <ctime>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include "builder/build_inputs.hpp"
#include "builder/cache/local_cache.hpp"
#include "builder/cache/registry_cache.hpp"
#include "builder/memory_budget.hpp"
#include "builder/output.hpp"
#include "builder/plan/plan.hpp"
#include "builder/scheduler.hpp"
#include "builder/snapshot/extracted_layer_store.hpp"
#include "builder/snapshot/layer_sink.hpp"
#include "builder/sources/context.hpp"
#include "builder/sources/context_source.hpp"
#include "builder/sources/registry_access.hpp"
#include "builder/work_dir.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/mount_guard.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/overlay_mount.hpp"
#include "registry/transfer.hpp"

namespace kiln {
namespace {

// ADD <url> and an https:// context: the registries' timeouts, and the same user agent.
HttpClientOptions download_options(const BuildOptions& options) {
    HttpClientOptions http;
    http.timeouts = transfer_timeouts(options.registries);
    return http;
}

// Logs how long each phase of the build took.
class PhaseTimer {
public:
    explicit PhaseTimer(std::string name) : m_name(std::move(name)), m_start(std::chrono::steady_clock::now()) {}
    ~PhaseTimer() {
        double seconds = seconds_since(m_start);
        log_event(LogLevel::debug, LogEvent::phase_done, str_cat("phase ", m_name, ": ", format_seconds(seconds, 2), " s"),
                  {{"phase", m_name}, {"seconds", seconds}});
    }

private:
    std::string m_name;
    std::chrono::steady_clock::time_point m_start;
};

Result<dockerfile::Dockerfile> parse(const std::string& path) {
    KILN_ASSIGN(std::string text, with_context(read_file(path, 16 << 20), "reading the Dockerfile"));
    KILN_ASSIGN(dockerfile::Dockerfile dockerfile, dockerfile::parse_dockerfile(text, path));
    for (const auto& warning : dockerfile.warnings)
        log_warn(format_location({.file = path, .line = static_cast<size_t>(warning.line), .text = {}}), ": ",
                 warning.message);
    // kiln has one built-in frontend: the directives are accepted and noted, not acted on.
    if (dockerfile.syntax) log_info("# syntax=", *dockerfile.syntax, " noted: kiln builds with its own Dockerfile frontend");
    if (dockerfile.check) log_info("# check=", *dockerfile.check, " noted: kiln runs no build checks");
    return dockerfile;
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

// The first RUN instruction of the Dockerfile, if any: what needs a sandbox, known before any image is
// resolved (a base image's ONBUILD RUN shows only in the plan).
const dockerfile::RunInstruction* first_run(const dockerfile::Dockerfile& dockerfile) {
    for (const dockerfile::Stage& stage : dockerfile.stages)
        for (const dockerfile::Instruction& instruction : stage.instructions)
            if (const auto* run = std::get_if<dockerfile::RunInstruction>(&instruction)) return run;
    return nullptr;
}

// What the machine allows, probed once before any image is resolved or pulled: the RUN sandbox (when the
// Dockerfile runs a command, a mode was asked for, or the overlay snapshotter may need it) and how layer
// ownership that cannot be applied is treated.
struct Host {
    std::unique_ptr<Sandbox> sandbox;  // where facts.sandbox points, however Host moves
    HostFacts facts;
};

// `run` is the Dockerfile's first RUN, or null; `runs_commands` is true when the plan, which may have found an
// ONBUILD RUN of a base image, needs a sandbox whatever the Dockerfile says.
Result<Host> probe_host(const BuildOptions& options, const HostEnvironment& environment,
                        const dockerfile::RunInstruction* run, bool runs_commands, const std::string& work_dir) {
    Host host;
    host.facts.ownership = environment.ownership_policy();
    if (!run && !runs_commands && options.sandbox == SandboxMode::automatic &&
        options.snapshotter == SnapshotterKind::walk)
        return host;
    auto sandbox = Sandbox::detect(SandboxOptions{.mode = options.sandbox,
                                                  .build_user_namespace_error = environment.build_user_namespace_error,
                                                  .probe_directory = work_dir});
    if (sandbox) {
        log_info("sandbox: ", sandbox->description());
        for (const std::string& reason : sandbox->ruled_out()) log_info("sandbox: not ", reason);
        if (sandbox->mode() == SandboxMode::chroot)
            log_warn("RUN steps run in a chroot as the host's root, without /proc: kiln trusts this Dockerfile, as Kaniko "
                     "does (", options.sandbox == SandboxMode::chroot ? "--sandbox=chroot" : "nothing stronger works here",
                     ")");
        host.sandbox = std::make_unique<Sandbox>(std::move(*sandbox));
        host.facts.sandbox = host.sandbox.get();
        if (host.sandbox->mode() == SandboxMode::chroot) host.facts.run_left_out = chroot_sandbox_run_paths();
        return host;
    }
    host.facts.sandbox_error = sandbox.error().message();
    // Before any image is pulled: a build whose RUN steps cannot run, or whose --sandbox cannot work, fails now.
    if (options.sandbox != SandboxMode::automatic) return fail(std::move(sandbox.error()));
    if (run)
        return fail(std::move(sandbox.error())
                        .context(str_cat("setting up the RUN sandbox for ", format_location(run->source_location()))));
    if (runs_commands)
        return fail(std::move(sandbox.error()).context("setting up the RUN sandbox for a base image's ONBUILD RUN"));
    return host;
}

Result<SnapshotterChoice> choose(const BuildOptions& options, const HostEnvironment& environment, const Host& host,
                                 const std::string& work_dir) {
    SnapshotterEnvironment snapshotter_environment{.work_dir = work_dir};
    if (!environment.private_mount_namespace)
        snapshotter_environment.mount_namespace_error = environment.private_mount_namespace_error;
    snapshotter_environment.overlay_run_error = [&]() -> std::string {
        if (!host.sandbox) return str_cat("no RUN sandbox: ", host.facts.sandbox_error);
        if (host.sandbox->mode() == SandboxMode::chroot) return "the chroot sandbox cannot mount a RUN's overlay";
        if (auto runs = host.sandbox->probe_overlay_rootfs(work_dir); !runs)
            return str_cat("RUN steps cannot run on an overlay: ", runs.error().message());
        return {};
    };
    return choose_snapshotter(options.snapshotter, snapshotter_environment);
}

LayerWriteOptions layer_write_options(const BuildOptions& options, std::optional<std::int64_t> timestamp) {
    LayerWriteOptions layer_options;
    layer_options.compression.compression = options.compression;
    if (options.compression_level >= 0) layer_options.compression.level = options.compression_level;
    // The same digest on any machine: gzip through zlib rather than ISA-L, whose output depends on the CPU.
    layer_options.compression.portable = options.reproducible;
    layer_options.timestamp = timestamp;
    return layer_options;
}

SnapshotPolicy snapshot_policy(const BuildOptions& options, const HostFacts& facts) {
    SnapshotPolicy policy{.ignored = {}, .mode = options.snapshot_mode, .single_snapshot = options.single_snapshot,
                          .ownership = facts.ownership};
    for (const std::string& path : options.ignore_paths) policy.ignored.push_back("/" + clean_path(path));
    if (options.ignore_var_run) policy.ignored.emplace_back("/var/run");
    return policy;
}

// The tmpfs that the overlay snapshotter extracts layers into, and puts steps' upper directories in, within
// --memory-budget; unmounted before the work directory is removed.
struct MemoryDirectory {
    std::string path;  // empty: none, layers go to the disk
    bool takes_uppers = false;
    MountGuard mount;
};

Result<MemoryDirectory> memory_directory(const BuildOptions& options, const HostEnvironment& environment,
                                         const Host& host, const SnapshotterChoice& choice, const std::string& work_dir) {
    MemoryDirectory memory;
    std::uint64_t budget = options.memory_budget.value_or(automatic_memory_budget());
    if (budget == 0 || !choice.overlay) return memory;
    // Mounts stay in kiln's own mount namespace; without one, the disk it is.
    if (!environment.private_mount_namespace) {
        log_info("memory budget: layers are extracted to the disk (", environment.private_mount_namespace_error, ")");
        return memory;
    }
    std::string path = work_dir + "/memory";
    KILN_TRY(make_directories(path, 0700));
    std::string data = str_cat("size=", budget, ",mode=0700");
    if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
        log_info("memory budget: layers are extracted to the disk (mount tmpfs: ", std::strerror(errno), ")");
        return memory;
    }
    memory.mount = MountGuard(path);
    memory.path = path;
    // Steps write there too where an overlay (and the RUN sandbox's) takes an upper directory on a tmpfs.
    Status uppers = probe_overlay(path);
    if (uppers && host.sandbox && host.sandbox->mode() != SandboxMode::chroot) uppers = host.sandbox->probe_overlay_rootfs(path);
    memory.takes_uppers = uppers.has_value();
    log_info("memory budget: layers are extracted", memory.takes_uppers ? ", and steps write," : "", " into memory up to ",
             format_bytes(budget), ", to the disk past it (--memory-budget)");
    if (!uppers) log_info("memory budget: steps write to the disk (", uppers.error().message(), ")");
    return memory;
}

// What the build sets up on this machine once the host is probed: the snapshotter, and the memory budget's tmpfs.
struct LocalSetup {
    SnapshotterChoice choice;
    MemoryDirectory memory;
};

Result<LocalSetup> set_up_locally(const BuildOptions& options, const HostEnvironment& environment, const Host& host,
                                  const std::string& work_dir) {
    KILN_ASSIGN(SnapshotterChoice choice, choose(options, environment, host, work_dir));
    log_info("snapshotter: ", choice.overlay ? "overlay" : "walk", " (", choice.reason, ")");
    KILN_ASSIGN(MemoryDirectory memory, memory_directory(options, environment, host, choice, work_dir));
    return LocalSetup{std::move(choice), std::move(memory)};
}

// Base layers kept extracted across builds, in <cache-dir>/extracted, for the overlay snapshotter: with an
// explicit --cache-dir, or where that directory exists below the default one (`kiln warm --extract` made it).
// Null where they are not kept; a store that cannot be opened is a warning.
std::unique_ptr<ExtractedLayerStore> extracted_layer_store(const BuildOptions& options, const SnapshotterChoice& choice,
                                                           const std::string& cache_dir, OwnershipFailure ownership) {
    std::string root = cache_dir + "/extracted";
    if (!choice.overlay || (options.cache_dir.empty() && !path_exists(root))) return nullptr;
    auto store = ExtractedLayerStore::open(root, extracted_layer_variant(ownership), dispose_directory);
    if (!store) {
        log_warn("base layers are not kept extracted: ", store.error().message());
        return nullptr;
    }
    log_info("extracted layers: kept in ", (*store)->directory(),
             options.cache_dir_max ? str_cat(", up to ", format_bytes(options.cache_dir_max), " (--cache-dir-max)") : "");
    return std::move(*store);
}

// The most a registry cache's retry waits: the build can always go on without the cache.
constexpr std::chrono::milliseconds k_cache_retry_window{2000};

// The caches a build with --cache uses, with the client the registry cache talks through.
struct LayerCaches {
    std::unique_ptr<RegistryClient> client;
    std::unique_ptr<LayerCache> cache;  // null without --cache
};

// The repository of the registry cache: --cache-repo, else the first destination's repository + /cache when
// the build pushes, else none.
std::optional<std::string> cache_repository(const BuildOptions& options, const std::vector<Reference>& destinations) {
    if (!options.cache.repository.empty()) return options.cache.repository;
    if (options.no_push || destinations.empty()) return std::nullopt;
    return str_cat(destinations.front().name(), "/cache");
}

// --cache: the local layer cache in <cache-dir>/layers (or in DIR, with --cache-repo oci:DIR), then the
// registry cache in the cache repository.
Result<LayerCaches> open_layer_caches(const BuildOptions& options, const std::vector<Reference>& destinations,
                                      const std::string& cache_dir, const RegistryClientOptions& registry_options,
                                      const BlobStore& store, const Platform& platform) {
    LayerCaches caches;
    if (!options.cache.enabled) return caches;
    if (options.single_snapshot) {
        log_warn("--cache has no effect with --single-snapshot: a stage's steps make no layers of their own");
        return caches;
    }
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    std::optional<std::string> repository = cache_repository(options, destinations);
    std::string local_root = cache_dir + "/layers";
    if (repository && repository->starts_with("oci:")) {
        local_root = repository->substr(4);
        if (local_root.empty()) return fail("--cache-repo oci:DIR: the directory is missing");
        repository.reset();
    }
    std::vector<std::unique_ptr<LayerCache>> chain;
    KILN_ASSIGN(auto local, with_context(LocalLayerCache::open(local_root, options.cache.ttl, now),
                                         "the layer cache in " + local_root));
    log_info("layer cache: ", local_root);
    chain.push_back(std::move(local));
    if (repository) {
        KILN_ASSIGN(Reference reference, with_context(Reference::parse(*repository), "--cache-repo"));
        size_t last_slash = repository->rfind('/');
        bool tagged = repository->find(':', last_slash == std::string::npos ? 0 : last_slash) != std::string::npos;
        if (tagged || reference.digest())
            return fail(str_cat("--cache-repo ", *repository, ": name a repository, without a tag or digest"));
        RegistryClientOptions cache_options = client_options(registry_options, options.push);
        // A cache that does not answer is skipped, not waited for: one quick retry, for a blip.
        cache_options.retry.attempts = std::min(cache_options.retry.attempts, 2);
        cache_options.retry.window = std::min(cache_options.retry.window, k_cache_retry_window);
        caches.client = std::make_unique<RegistryClient>(std::move(cache_options));
        chain.push_back(std::make_unique<RegistryLayerCache>(
            *caches.client, reference, store,
            RegistryCacheSettings{.ttl = options.cache.ttl,
                                  .now = now,
                                  .push = options.cache.push,
                                  .platform = platform,
                                  .writers = options.registries.transfer_jobs}));
        log_info("layer cache: ", reference.name(), options.cache.push ? "" : " (--no-push-cache: read only)");
    }
    caches.cache = chain.size() == 1 ? std::move(chain.front()) : std::make_unique<CacheChain>(std::move(chain));
    return caches;
}

// The uploads of the pushed image's new layers while the build goes on; null when nothing is pushed.
std::unique_ptr<EarlyUploads> early_uploads(const BuildOptions& options, const std::vector<Reference>& destinations,
                                            const RegistryClientOptions& registry_options) {
    if (options.no_push || destinations.empty()) return nullptr;
    return std::make_unique<EarlyUploads>(client_options(registry_options, options.push), destinations,
                                          options.registries.transfer_jobs);
}

}  // namespace

Result<BuildResult> run_build(const BuildOptions& options, const HostEnvironment& environment) {
    auto build_start = std::chrono::steady_clock::now();
    KILN_ASSIGN(std::vector<Reference> destinations, parse_destinations(options));

    std::string work_parent = options.work_dir_parent.empty() ? environment.temp_parent() : options.work_dir_parent;
    KILN_TRY_CONTEXT(make_directories(work_parent, 0755), "--work-dir");
    sweep_stale_work_dirs(work_parent);
    KILN_ASSIGN(WorkDir work, WorkDir::create(work_parent));
    if (options.cleanup) work.set_removal(WorkDirRemoval::before_returning);
    KILN_ASSIGN(PreparedContext prepared, prepare_context(ContextInputs{.context = options.context_dir,
                                                                        .sub_path = options.context_sub_path,
                                                                        .dockerfile = options.dockerfile,
                                                                        .work_dir = work.path(),
                                                                        .stdin_fd = environment.stdin_fd,
                                                                        .git = options.git,
                                                                        .environment = environment.variables,
                                                                        .http = download_options(options),
                                                                        .max_download_size = options.max_download_size}));
    const std::string& dockerfile_path = prepared.dockerfile;
    dockerfile::Dockerfile dockerfile;
    {
        PhaseTimer timer("parse");
        KILN_ASSIGN(dockerfile, parse(dockerfile_path));
    }
    BuildArgs build_args(options.build_args);
    BuildPlatforms platforms{.target = options.custom_platform.value_or(host_platform()), .build = host_platform()};
    KILN_ASSIGN(MetaArgs meta_args, MetaArgs::evaluate(dockerfile, build_args, platforms));

    // Before any image is resolved or pulled, from the Dockerfile's own RUN steps; RUN steps in stages the target
    // does not need count too, as which stages those are is known only from the plan.
    const dockerfile::RunInstruction* run = first_run(dockerfile);
    KILN_ASSIGN(Host host, probe_host(options, environment, run, false, work.path()));

    KILN_ASSIGN(BlobStore store, BlobStore::open(work.path() + "/store"));
    KILN_ASSIGN(BuildContext context, BuildContext::open(prepared.directory, dockerfile_path));
    KILN_ASSIGN(RegistryClientOptions registry_options,
                shared_client_options(options.registries, environment.credentials(), environment.trust()));
    KILN_ASSIGN(RegistryRoutes routes, registry_routes(options.registries));
    RegistryClient pull_client(client_options(registry_options, options.pull));
    std::optional<RegistryClient> push_client;
    if (!options.no_push) push_client.emplace(client_options(registry_options, options.push));
    // The push check, the plan's requests and the local probes wait on different things (two registries, the
    // disk): they overlap. Whatever fails, the push check's failure is the one reported, as if it ran first.
    std::future<Status> push_permission;
    if (push_client && options.registries.check_push_permission) {
        push_permission = std::async(std::launch::async, [&] {
            PhaseTimer timer("push permission");
            return check_push_permissions(*push_client, destinations);
        });
    }
    std::future<Result<LocalSetup>> local =
        std::async(std::launch::async, [&] { return set_up_locally(options, environment, host, work.path()); });
    std::string cache_dir = options.cache_dir.empty() ? environment.default_cache_dir() : options.cache_dir;
    std::optional<WarmImages> warm;
    if (path_exists(cache_dir + "/images/refs")) {
        KILN_ASSIGN(warm, with_context(WarmImages::open(cache_dir + "/images"), "--cache-dir " + cache_dir));
    }
    RegistryImageSource images(pull_client, std::move(routes), store,
                               ImageSourceSettings{.build_contexts = options.build_contexts,
                                                   .transfer_jobs = options.registries.transfer_jobs,
                                                   .default_fallback = options.registries.default_fallback,
                                                   .warm = warm ? &*warm : nullptr});

    Result<BuildPlan> planned = [&] {
        PhaseTimer timer("plan");
        return plan_build(PlanInputs{.dockerfile = dockerfile,
                                     .meta_args = meta_args,
                                     .build_args = build_args,
                                     .target = options.target,
                                     .platform = platforms.target,
                                     .images = images});
    }();
    if (push_permission.valid()) KILN_TRY(push_permission.get());
    KILN_ASSIGN(BuildPlan plan, std::move(planned));
    for (const std::string& unused : build_args.unused())
        log_warn("build argument ", unused, " was given but not declared by any ARG in ", dockerfile_path);

    if (!host.sandbox && plan.runs_commands()) {
        // A base image's ONBUILD RUN, where the Dockerfile has none: the probe that was skipped runs now.
        local.get();  // set up for the host without a sandbox: again, below
        KILN_ASSIGN(host, probe_host(options, environment, nullptr, true, work.path()));
    }
    KILN_ASSIGN(LocalSetup set_up, local.valid() ? local.get() : set_up_locally(options, environment, host, work.path()));
    const SnapshotterChoice& choice = set_up.choice;
    MemoryDirectory& memory = set_up.memory;
    std::optional<std::int64_t> epoch = environment.source_date_epoch();
    std::int64_t created = options.reproducible ? epoch.value_or(0) : static_cast<std::int64_t>(std::time(nullptr));
    StoreLayerSink layers(store, layer_write_options(options, options.reproducible ? std::optional(created) : std::nullopt),
                          options.manifest_format);
    // Before the snapshotter: its mounts stack the store's trees, which stay held until they are gone.
    std::unique_ptr<ExtractedLayerStore> kept = extracted_layer_store(options, choice, cache_dir, host.facts.ownership);
    std::unique_ptr<Snapshotter> snapshotter =
        make_snapshotter(choice, snapshot_policy(options, host.facts), layers, work.path(),
                         ExtractionPlaces{.memory_dir = memory.path, .memory_takes_uppers = memory.takes_uppers,
                                          .store = kept.get()});
    ImageFilesystems image_filesystems(images, work.path() + "/copy-sources", host.facts.ownership);
    UrlDownloads downloads(work.path() + "/downloads", download_options(options), options.max_download_size);
    KILN_ASSIGN(LayerCaches caches, open_layer_caches(options, destinations, cache_dir, registry_options, store,
                                                      platforms.target));
    LayerCache* cache = caches.cache.get();
    std::unique_ptr<EarlyUploads> early = early_uploads(options, destinations, registry_options);
    BuildInputs build{.options = options,
                      .environment = environment,
                      .host = host.facts,
                      .dockerfile = dockerfile,
                      .plan = plan,
                      .context = context,
                      .images = images,
                      .image_filesystems = image_filesystems,
                      .downloads = downloads,
                      .snapshotter = *snapshotter,
                      .layers = layers,
                      .cache = cache,
                      .uploads = early.get(),
                      .work_dir = work.path(),
                      .cache_dir = cache_dir,
                      .platform = platforms.target,
                      .created_seconds = created};

    // Declared after the work directory: stages' mounts go before their directories do.
    std::vector<StageOutput> outputs;
    {
        PhaseTimer timer("stages");
        KILN_TRY(build_stages(build, outputs, std::max(2u, std::thread::hardware_concurrency())));
    }

    Image image = outputs.at(plan.stages.size() - 1).image;
    for (size_t i = 0; i < plan.stages.size(); ++i)
        if (plan.stages[i].index == plan.target) image = outputs[i].image;
    ImageConfig config = image.config();
    config.created = format_rfc3339(created);
    for (const auto& [key, value] : options.labels) config.config.labels[key] = value;
    image = image.with_config(std::move(config));
    KILN_ASSIGN(ImageDocuments documents, write_image_documents(image, options.manifest_format, store));
    log_info("image ", documents.manifest.digest.str(), ": ", image.layers().size(), " layer(s)");

    {
        PhaseTimer timer("output");
        PushOptions push{{.jobs = options.registries.transfer_jobs}, images.blob_origins(), {},
                         options.push_ignore_immutable_tag_errors};
        if (cache) push.blob_origins.merge(cache->blob_origins());
        if (early) {
            // What is not on its way yet (the config, and layers of the base or the cache) goes up alongside the
            // last layer: the push is then the manifest alone.
            for (const BlobUpload& upload : image_uploads(image, documents, push.blob_origins)) early->add(upload);
            push.uploaded = early->wait();
        }
        KILN_TRY(write_outputs(options, destinations, image, documents, push_client ? &*push_client : nullptr, push));
    }
    // The cache's uploads ran alongside the stages and the push; what is left is waited for here.
    if (cache) cache->flush();
    if (kept) {
        // The layers this build stacks are still held, and stay.
        if (options.cache_dir_max) {
            if (auto evicted = kept->evict(options.cache_dir_max); !evicted)
                log_warn("extracted layers: ", evicted.error().message());
        }
        kept->keep_in_background(host.facts.ownership, options.cache_dir_max);
    }
    if (options.keep_work_dir) log_info("kept the work directory ", work.release());
    log_info("built ", documents.manifest.digest.str(), " in ", format_seconds(seconds_since(build_start), 2), " s");
    return BuildResult{.manifest_digest = documents.manifest.digest};
}

}  // namespace kiln
