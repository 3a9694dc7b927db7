#include "builder/session.hpp"

#include "builder/commands/commands.hpp"
#include "layers/snapshot_overlay.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {

void BuildSession::note_pulled(const Reference& repository, const std::vector<Descriptor>& blobs) {
    std::lock_guard lock(pulled_from_mutex);
    for (const Descriptor& blob : blobs) pulled_from.emplace(blob.digest.str(), repository);
}

std::map<std::string, Reference> BuildSession::blob_origins() {
    std::lock_guard lock(pulled_from_mutex);
    return pulled_from;
}

Result<const Sandbox*> BuildSession::sandbox() {
    std::lock_guard lock(shared_state_mutex);
    if (!probed_sandbox) {
        KILN_ASSIGN(Sandbox probed, with_context(Sandbox::detect(SandboxOptions{.probe_directory = work_dir}),
                                                 "setting up the RUN sandbox"));
        log_info("sandbox: ", probed.description());
        probed_sandbox = std::move(probed);
    }
    return &*probed_sandbox;
}

LayerWriteOptions BuildSession::layer_options() const {
    LayerWriteOptions layer_options;
    layer_options.compression.compression = options.compression;
    if (options.compression_level >= 0) layer_options.compression.level = options.compression_level;
    // The same digest on any machine: gzip through zlib rather than ISA-L, whose output depends on the CPU.
    layer_options.compression.portable = options.reproducible;
    layer_options.timestamp = layer_timestamp;
    return layer_options;
}

Result<std::string> StageState::expand(std::string_view word, const dockerfile::InstructionBase& at) const {
    return with_context(expander.process_word(word, lookup()), where(at));
}

std::string StageState::where(const dockerfile::InstructionBase& at) const {
    return str_cat(at.location.file, ":", at.location.start_line, ": ", at.original);
}

Error instruction_error(const StageState& state, const dockerfile::InstructionBase& at, std::string message) {
    return Error(str_cat(state.where(at), ": ", message));
}

void StageState::add_empty_history(const dockerfile::InstructionBase& at) { add_empty_history(at.original); }

void StageState::add_empty_history(std::string created_by) {
    image = image.with_empty_layer_history(
        History{.created = format_rfc3339(session.created_seconds), .created_by = std::move(created_by)});
}

Status StageState::commit_layer(const std::vector<LayerEntry>& entries, std::string created_by,
                                const std::vector<std::string>& excluded) {
    walk_state.reset();  // whoever commits a layer has changed the rootfs
    if (session.options.single_snapshot) {
        add_empty_history(std::move(created_by));
        return {};
    }
    if (!overlay) return write_layer_now(entries, std::move(created_by));
    std::vector<std::string> left_out = ignored_paths();
    left_out.insert(left_out.end(), excluded.begin(), excluded.end());
    KILN_ASSIGN(UpperChanges changes, overlay->changes(left_out));
    log_debug("overlay upper: ", changes.stats.entries, " entries, ", changes.stats.whiteouts, " whiteout(s), ",
              changes.stats.opaque_directories, " opaque, ", changes.stats.unchanged_copy_ups,
              " unchanged copy-up(s) left out");
    KILN_ASSIGN(RootFs upper, overlay->upper());
    KILN_TRY(write_layer_from(upper, changes.entries, std::move(created_by)));
    // The upper joins the lowers and the rootfs is mounted again: every RootFs of the old mount is stale.
    KILN_TRY(overlay->next_step());
    KILN_ASSIGN(rootfs, RootFs::open(rootfs_path));
    return {};
}

Status StageState::write_layer_now(const std::vector<LayerEntry>& entries, std::string created_by) {
    return write_layer_from(rootfs, entries, std::move(created_by));
}

Status StageState::write_layer_from(const RootFs& source, const std::vector<LayerEntry>& entries,
                                    std::string created_by) {
    KILN_ASSIGN(BlobIngest ingest, session.store.begin());
    KILN_ASSIGN(LayerWriteResult written,
                write_layer(source, without_excluded(entries, ignored_paths()), ingest, session.layer_options()));
    KILN_ASSIGN(Digest digest, ingest.commit(written.digest));
    Descriptor descriptor{.media_type = std::string(layer_media_type(session.options.manifest_format, written.compression)),
                          .digest = digest,
                          .size = static_cast<std::int64_t>(written.compressed_size)};
    log_info("  layer ", digest.short_str(), ": ", entries.size(), " path(s), ", format_bytes(written.compressed_size));
    auto layer = std::make_shared<FileLayer>(std::move(descriptor), written.diff_id, session.store.path(digest));
    image = image.with_layer(std::move(layer),
                             History{.created = format_rfc3339(session.created_seconds), .created_by = std::move(created_by)});
    return {};
}

}  // namespace kiln
