#include "builder/cache/step_key.hpp"

#include "builder/cache/tree_digest.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/layer_writer.hpp"

namespace kiln {
namespace {

// What shapes a layer's bytes besides the step: the platform and the layer options.
std::string build_part(const BuildInputs& build) {
    const BuildOptions& options = build.options;
    std::vector<std::string> ignored = options.ignore_paths;
    return str_cat("platform=", build.platform.str(), " compression=", static_cast<int>(options.compression),
                   " level=", options.compression_level, " reproducible=", options.reproducible,
                   options.reproducible ? str_cat(" epoch=", build.created_seconds) : std::string(),
                   " snapshot-mode=", snapshot_mode_name(options.snapshot_mode), " ignore=", join(ignored, ","),
                   " ignore-var-run=", options.ignore_var_run, " format=", static_cast<int>(options.manifest_format));
}

// The content of a stack of layers; an empty layer (--force-build-metadata's, or a base's) changes none.
std::string content_of(const std::vector<Digest>& diff_ids) {
    std::string text;
    for (const Digest& diff_id : diff_ids)
        if (diff_id != empty_layer_diff_id()) text += diff_id.str() + "\n";
    return "sha256:" + sha256_hex(text);
}

class KeyBuilder {
public:
    KeyBuilder(const BuildInputs& build, const PlannedStage& stage, const StageReads& reads, const Step& step)
        : m_build(build), m_stage(stage), m_reads(reads), m_step(step) {}

    // Records what `from` names; false (with m_not_cached set) when it cannot be keyed.
    Status read_source(const SourceRef& from, std::map<std::string, std::string>& out) {
        switch (from.kind) {
            case SourceRef::Kind::context:
                return {};  // the caller digests the files it reads
            case SourceRef::Kind::stage: {
                auto found = m_reads.find(from.stage);
                if (found == m_reads.end())
                    return fail(str_cat("internal error: stage ", from.stage, " was not handed to ", m_stage.label));
                out[str_cat("stage ", from.stage)] = content_of(found->second.diff_ids);
                return {};
            }
            case SourceRef::Kind::image: {
                if (from.image == "scratch") {
                    out["image scratch"] = "scratch";
                    return {};
                }
                KILN_ASSIGN(SourceImage image, m_build.images.resolve(from.image, m_build.platform));
                out["image " + from.image] = image.manifest_digest.str();
                return {};
            }
        }
        return {};
    }

    Status reads_of(const CopyStep& copy, std::map<std::string, std::string>& out) {
        if (copy.from.kind != SourceRef::Kind::context) return read_source(copy.from, out);
        SourceDirectory context{.path = m_build.context.root().path(),
                                .ignore = m_build.context.ignore(),
                                .layers = {},
                                .is_context = true};
        KILN_ASSIGN(CopySelection selection, select_copy_sources(context, copy, m_step.location));
        for (const SelectedSource& source : selection.sources) {
            if (source.is_url) {
                // With --checksum the key needs no download; without, it is the downloaded bytes', and the
                // step, if it runs, copies that same download.
                if (copy.checksum.empty()) {
                    KILN_ASSIGN(UrlDownloads::File file,
                                with_location(m_build.downloads.fetch(source.path), m_step.location));
                    // The download's Last-Modified becomes the file's mtime, so it shapes the layer too.
                    out["url " + source.path] =
                        str_cat(file.download.digest, " mtime ", file.download.last_modified.value_or(0));
                } else {
                    out["url " + source.path] = copy.checksum;
                }
                continue;
            }
            KILN_TRY(digest_tree(selection.root, source.path, selection.ignore, false, "context:", out));
        }
        return {};
    }

    Status reads_of(const RunStep& run, std::map<std::string, std::string>& out) {
        for (const PlannedMount& mount : run.mounts) {
            // Secrets and cache mounts never count: their contents are not the step's input to key on.
            if (mount.request.type != RunMountType::bind) continue;
            if (mount.from.kind != SourceRef::Kind::context) {
                KILN_TRY(read_source(mount.from, out));
                continue;
            }
            KILN_TRY(digest_tree(m_build.context.root(), mount.request.source, m_build.context.ignore(), false,
                                 "context:", out));
        }
        return {};
    }

    Status reads_of(const WorkdirStep&, std::map<std::string, std::string>&) { return {}; }
    Status reads_of(const std::monostate&, std::map<std::string, std::string>&) { return {}; }

    const std::string& not_cached() const { return m_not_cached; }

private:
    const BuildInputs& m_build;
    const PlannedStage& m_stage;
    const StageReads& m_reads;
    const Step& m_step;
    std::string m_not_cached;
};

}  // namespace

Result<StepKey> step_key(const BuildInputs& build, const PlannedStage& stage, const StageReads& reads, const Step& step,
                         const Image& image) {
    StepKey key;
    std::string name = str_cat(build.dockerfile.file_name, "\n", stage.label, "\n", step.number, "\n", step.keyword);
    if (step.number == 0) name += str_cat("\n", step.location.file, ":", step.location.line);
    key.identity = Digest::from_sha256_hex(sha256_hex(name));

    KeyInputs inputs;
    // An empty layer changes no content: a step keys the same with it or without it.
    for (const Digest& diff_id : image.config().diff_ids)
        if (diff_id != empty_layer_diff_id()) inputs.parent.push_back(diff_id.str());
    inputs.step = step_fields(step);
    inputs.build = build_part(build);
    inputs.base = stage.base_image ? stage.base_image->manifest_digest.str()
                  : stage.base_stage ? str_cat("stage ", *stage.base_stage)
                                     : "scratch";
    KeyBuilder builder(build, stage, reads, step);
    KILN_TRY(with_location(std::visit([&](const auto& action) { return builder.reads_of(action, inputs.reads); },
                                      step.action),
                           step.location));
    if (!builder.not_cached().empty()) {
        key.not_cached = builder.not_cached();
        return key;
    }
    key.inputs = std::move(inputs);
    return key;
}

}  // namespace kiln
