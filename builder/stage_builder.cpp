#include "builder/stage_builder.hpp"

#include <chrono>
#include <set>

#include "builder/cache/layer_cache.hpp"
#include "builder/cache/step_key.hpp"
#include "builder/cancellation.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "layers/layer_writer.hpp"

namespace kiln {
namespace {

class StageBuild {
public:
    StageBuild(const BuildInputs& build, const PlannedStage& stage, const StageDependencies& dependencies)
        : m_build(build), m_stage(stage), m_dependencies(dependencies) {
        for (const Step& step : stage.steps) m_step_count += step.number > 0 ? 1 : 0;
        if (build.uploads && build.plan.in_target_image(stage.index)) m_uploads = build.uploads;
    }

    Result<StageOutput> run() {
        while (true) {
            auto output = run_once();
            if (output || !m_start_over) return output;
            // A cached layer could not be fetched before the stage had a filesystem: nothing is spent yet, and
            // the stage starts over with that entry refused.
            m_start_over = false;
            m_pending.clear();
        }
    }

private:
    Result<StageOutput> run_once() {
        std::string from = str_cat("[", m_stage.label, " 1/", m_step_count, "] ", m_stage.from.text);
        {
            LogStep place(str_cat("1/", m_step_count));
            log_event(LogLevel::info, LogEvent::step_started, from, {{"instruction", m_stage.from.text}});
            StepInProgress in_progress(str_cat(from, " (", m_stage.from.file, ":", m_stage.from.line, ")"));
            auto start = std::chrono::steady_clock::now();
            KILN_TRY(start_from_base());
            log_event(LogLevel::info, LogEvent::step_done, "",
                      {{"seconds", seconds_since(start)}, {"cache", std::string("off")}});
        }
        for (const Step& step : m_stage.steps) {
            std::string number = step.number == 0 ? "ONBUILD" : str_cat(step.number, "/", m_step_count);
            LogStep place(number);
            std::string title = str_cat("[", m_stage.label, " ", number, "] ", step.location.text);
            log_event(LogLevel::info, LogEvent::step_started, title, {{"instruction", step.location.text}});
            StepInProgress in_progress(str_cat(title, " (", step.location.file, ":", step.location.line, ")"));
            auto start = std::chrono::steady_clock::now();
            m_outcome = StepOutcome{};
            if (step.number == 0)
                KILN_TRY_CONTEXT(run_step(step), str_cat("run by ", format_location(m_stage.from)));
            else
                KILN_TRY(run_step(step));
            log_step_done(seconds_since(start));
        }
        // Later stages' COPY --from and RUN --mount from= read this one's files; a stage built FROM it starts
        // from its image and needs none of them.
        if (m_stage.step_readers > 0) KILN_TRY(ensure_filesystem());
        // --single-snapshot's one layer, if the stage made a filesystem and changed something in it.
        std::optional<LayerPtr> finished;
        if (m_filesystem) {
            KILN_ASSIGN(finished, m_filesystem->finish());
        }
        LayerPtr layer = finished ? unless_empty(*finished) : nullptr;
        if (!layer && m_build.options.single_snapshot && m_build.options.force_build_metadata) {
            KILN_ASSIGN(layer, m_build.layers.write_empty());
        }
        if (layer)
            add_new_layer(layer, history(str_cat("single snapshot of ", m_stage.label.starts_with("stage ") ? "" : "stage ",
                                                 m_stage.label)));
        return StageOutput{.image = std::move(m_image), .filesystem = std::move(m_filesystem)};
    }

    // What the step done last came to, for its step_done event.
    struct StepOutcome {
        std::string cache = "off";  // "hit", "miss" or "off" (not a step the cache keeps)
        std::string cache_source;   // on a hit: which cache
        LayerPtr layer;             // the layer it added, if any
        double commit_seconds = 0;  // taking the layer: finding what changed, writing and compressing it
    };

    // Ends a step: "done in" for one that took a while; the event carries what the step came to.
    void log_step_done(double seconds) {
        std::vector<LogField> fields{{"seconds", seconds}, {"cache", m_outcome.cache}};
        if (!m_outcome.cache_source.empty()) fields.push_back({"cache_source", m_outcome.cache_source});
        if (m_outcome.layer) {
            fields.push_back({"layer_digest", m_outcome.layer->descriptor().digest.str()});
            fields.push_back({"layer_size", m_outcome.layer->descriptor().size});
        }
        if (m_outcome.commit_seconds > 0) fields.push_back({"commit_seconds", m_outcome.commit_seconds});
        // Shorter steps get no line of text; structured sinks still see them.
        std::string text = seconds >= 0.05 ? str_cat("  done in ", format_seconds(seconds, 2), " s") : "";
        log_event(LogLevel::info, LogEvent::step_done, text, std::move(fields));
    }

    // The image the stage starts from: a finished stage's, an image's, or scratch.
    Status start_from_base() {
        m_base = Image::empty(m_stage.platform);
        if (m_stage.base_stage) {
            if (!m_dependencies.base) return fail_at(m_stage.from, "internal error: the base stage was not handed over");
            m_base = m_dependencies.base->image;
        } else if (m_stage.base_image) {
            m_base = m_stage.base_image->image;
        }
        m_image = m_base.with_run_config(m_stage.start_config);
        return {};
    }

    // The stage's filesystem, made when a step first needs it: the base's layers fetched and extracted (or the
    // parent stage's taken over), then the cached layers of the steps before. A stage whose every step is
    // cached never makes one.
    Status ensure_filesystem() {
        if (m_filesystem) return {};
        // The cached layers are fetched before the filesystem is made: a broken one costs a restart, not the build.
        for (const PendingLayer& pending : m_pending) {
            if (auto fetched = pending.layer->open_blob(); !fetched) {
                refuse(pending.key, fetched.error());
                m_start_over = true;
                return fail(str_cat("the stage ", m_stage.label, " starts over"));
            }
        }
        std::string directory = str_cat(m_build.work_dir, "/stages/", m_stage.index);
        KILN_TRY(make_directories(directory, 0700));
        StageFilesystem* parent = m_stage.base_stage ? m_dependencies.base->filesystem.get() : nullptr;
        // Without the parent's files, the stage starts from its image, whose base layers must be readable:
        // fetched all at once here, or each as the snapshotter extracts it.
        if (!parent && !m_build.snapshotter.fetches_layers_as_it_extracts())
            KILN_TRY(fetch_base_layers(m_build.plan, m_stage.index, m_build.images));
        bool shared = !m_stage.base_stage || m_build.plan.find(*m_stage.base_stage)->readers > 1;
        StageStart start{.directory = directory, .base = m_base, .parent = parent, .parent_has_other_readers = shared,
                         .cached = {}};
        for (const PendingLayer& pending : m_pending) start.cached.push_back(pending.layer);
        KILN_ASSIGN(m_filesystem, with_location(m_build.snapshotter.prepare_stage(start), m_stage.from));
        log_debug("the filesystem of ", m_stage.label, " is prepared (", m_build.snapshotter.name(), "), with ",
                  m_pending.size(), " cached layer(s)");
        m_pending.clear();
        return {};
    }

    // Whether the cache keeps this kind of step (--cache-run-layers, --cache-copy-layers).
    bool cacheable(const Step& step) const {
        if (!m_build.cache) return false;
        if (std::holds_alternative<RunStep>(step.action)) return m_build.options.cache.run_layers;
        if (std::holds_alternative<CopyStep>(step.action)) return m_build.options.cache.copy_layers;
        return true;
    }

    // The step's cached result when the cache has one: the stage then records its layer (applied to the
    // filesystem only if a later step needs the files) and the step is done. Otherwise the log says why.
    Result<bool> from_cache(const Step& step, const std::optional<StepKey>& key) {
        if (!key) return false;
        if (!key->inputs) {
            log_info("  not cached: ", key->not_cached);
            return false;
        }
        LayerCache& cache = *m_build.cache;
        Digest cache_key = key->inputs->key();
        if (m_refused.contains(cache_key.str())) {
            log_info("  not cached: its entry's layer could not be fetched");
            return false;
        }
        auto hit = cache.lookup(cache_key);
        if (!hit) {
            log_warn("layer cache: ", hit.error().message(), "; the step runs");
            return false;
        }
        if (!*hit) {
            std::optional<KeyInputs> before = cache.previous_inputs(key->identity);
            log_info("  not cached: ", before ? key->inputs->difference_from(*before) : "no earlier build of this step");
            return false;
        }
        LayerPtr cached = unless_empty((*hit)->layer);
        if (cached && m_filesystem) {
            // Applied now: fetched first, so that a layer that cannot be fetched is a miss.
            if (auto fetched = cached->open_blob(); !fetched) {
                refuse(cache_key, fetched.error());
                return false;
            }
        }
        log_info("  cached (", (*hit)->source, ")");
        m_outcome.cache = "hit";
        m_outcome.cache_source = (*hit)->source;
        KILN_TRY(add_step_layer(cached, step, LayerOrigin::cache));
        if (!cached) return true;  // a layer that holds nothing has nothing to apply
        if (m_filesystem)
            KILN_TRY_CONTEXT(m_filesystem->apply_layer(*cached),
                             str_cat("applying the cached layer ", cached->descriptor().digest.str()));
        else
            m_pending.push_back(PendingLayer{.layer = cached, .key = cache_key});
        return true;
    }

    void refuse(const Digest& key, const Error& error) {
        log_warn("layer cache: the entry ", key.short_str(), " is not used: ", error.message());
        m_refused.insert(key.str());
    }

    // Keeps what the step made for later builds; a failure is a warning, never the build's.
    void keep(const StepKey& key, const LayerPtr& layer) {
        LayerCache& cache = *m_build.cache;
        if (auto stored = cache.store(key.inputs->key(), layer); !stored)
            log_warn("layer cache: keeping a layer of ", m_stage.label, " failed: ", stored.error().message());
        if (auto recorded = cache.record_inputs(key.identity, *key.inputs); !recorded)
            log_debug("layer cache: ", recorded.error().message());
    }

    Status run_step(const Step& step) {
        if (step.author) {
            ImageConfig config = m_image.config();
            config.author = *step.author;
            m_image = m_image.with_config(std::move(config));
        }
        m_image = m_image.with_run_config(step.config);
        if (!step.changes_files()) return add_step_layer(nullptr, step, LayerOrigin::this_build);
        std::optional<StepKey> key;
        if (cacheable(step)) {
            KILN_ASSIGN(key, step_key(m_build, m_stage, m_dependencies.reads, step, m_image));
        }
        if (key) m_outcome.cache = "miss";
        KILN_ASSIGN(bool cached, from_cache(step, key));
        if (cached) return {};
        KILN_TRY(ensure_filesystem());
        StepContext context{.build = m_build,
                            .stage = m_stage,
                            .step = step,
                            .filesystem = *m_filesystem,
                            .reads = m_dependencies.reads,
                            .name = step.number == 0
                                        ? str_cat("an ONBUILD trigger of ", m_stage.label)
                                        : str_cat("step ", step.number, "/", m_step_count, " of ", m_stage.label)};
        KILN_ASSIGN(StepWrites writes, execute_spilling(context));
        LayerPtr layer;
        if (writes.makes_layer) {
            auto start = std::chrono::steady_clock::now();
            KILN_ASSIGN(std::optional<LayerPtr> committed, with_location(m_filesystem->commit(writes), step.location));
            m_outcome.commit_seconds = seconds_since(start);
            if (committed) layer = unless_empty(*committed);
            if (!layer && !m_build.options.single_snapshot) log_info("  no layer: the step changed no file");
        }
        if (key && key->inputs) keep(*key, layer);
        return add_step_layer(layer, step, LayerOrigin::this_build);
    }

    // A layer that holds nothing counts as none: a RUN that changed no file, a COPY that matched nothing.
    static LayerPtr unless_empty(LayerPtr layer) {
        return layer && layer->diff_id() == empty_layer_diff_id() ? nullptr : layer;
    }

    enum class LayerOrigin { this_build, cache };

    // Adds the step's layer to the image, or only its history entry where it has none, as Kaniko and BuildKit
    // do; --force-build-metadata gives every step a layer, an empty one where it has none (with
    // --single-snapshot, only the stage's one layer is forced).
    Status add_step_layer(LayerPtr layer, const Step& step, LayerOrigin origin) {
        if (!layer && m_build.options.force_build_metadata && !m_build.options.single_snapshot) {
            KILN_ASSIGN(layer, m_build.layers.write_empty());
            origin = LayerOrigin::this_build;
        }
        m_outcome.layer = layer;
        if (!layer)
            m_image = m_image.with_empty_layer_history(history(step.created_by));
        else if (origin == LayerOrigin::this_build)
            add_new_layer(layer, history(step.created_by));
        else
            m_image = m_image.with_layer(layer, history(step.created_by));  // uploaded at the end, from its origin
        return {};
    }

    // Executes the step; one that failed for want of room in the memory budget runs again, writing to the disk.
    Result<StepWrites> execute_spilling(StepContext& context) {
        Result<StepWrites> attempt = execute_step(context);
        if (attempt) return attempt;
        KILN_ASSIGN(bool spilled, m_filesystem->spill_failed_step());
        if (!spilled) return attempt;
        log_info("memory budget: full while ", context.name, " wrote; running it again on the disk (",
                 attempt.error().message(), ")");
        return execute_step(context);
    }

    // A layer this build made: when it ends up in the pushed image, its upload starts now, while the next
    // steps run.
    void add_new_layer(const LayerPtr& layer, History history) {
        m_image = m_image.with_layer(layer, std::move(history));
        if (m_uploads)
            m_uploads->add({.blob = layer->descriptor(),
                            .open = [layer] { return layer->open_blob(); },
                            .bytes = BlobBytes::at_hand});
    }

    History history(std::string created_by) const {
        return History{.created = format_rfc3339(m_build.created_seconds), .created_by = std::move(created_by)};
    }

    const BuildInputs& m_build;
    const PlannedStage& m_stage;
    const StageDependencies& m_dependencies;
    size_t m_step_count = 1;  // FROM is step 1
    Image m_base = Image::empty(Platform{});  // the image the stage starts from
    std::unique_ptr<StageFilesystem> m_filesystem;  // made by ensure_filesystem()
    struct PendingLayer {
        LayerPtr layer;
        Digest key;  // of the cache entry it came from
    };
    std::vector<PendingLayer> m_pending;  // cached layers not yet applied to m_filesystem
    std::set<std::string> m_refused;      // cache entries whose layer could not be fetched: misses
    bool m_start_over = false;
    EarlyUploads* m_uploads = nullptr;  // set when the stage's layers end up in the pushed image
    Image m_image = Image::empty(Platform{});
    StepOutcome m_outcome;
};

}  // namespace

Status fetch_base_layers(const BuildPlan& plan, size_t index, ImageSource& images) {
    for (const PlannedStage* stage = plan.find(index); stage;
         stage = stage->base_stage ? plan.find(*stage->base_stage) : nullptr) {
        if (stage->base_image) return with_location(images.fetch_layers(*stage->base_image), stage->from);
    }
    return {};
}

Result<StageOutput> build_stage(const BuildInputs& build, const PlannedStage& stage,
                                const StageDependencies& dependencies) {
    return StageBuild(build, stage, dependencies).run();
}

}  // namespace kiln
