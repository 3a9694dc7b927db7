#include "builder/snapshot/layer_sink.hpp"

#include <chrono>

#include "common/log.hpp"
#include "common/progress.hpp"
#include "common/strings.hpp"

namespace kiln {

Result<LayerPtr> StoreLayerSink::write(const RootFs& source, const std::vector<LayerEntry>& entries) {
    // write_layer hashes the compressed bytes as it writes them: the ingest need not hash them again.
    auto start = std::chrono::steady_clock::now();
    KILN_ASSIGN(BlobIngest ingest, m_store.begin(IngestDigest::from_writer));
    TransferProgress progress(str_cat("write layer of ", entries.size(), " path(s)"), 0);
    ProgressWriter counted(ingest, progress);
    KILN_ASSIGN(LayerWriteResult written, write_layer(source, entries, counted, m_options));
    progress.finish();
    KILN_ASSIGN(Digest digest, ingest.commit(written.digest));
    Descriptor descriptor{.media_type = std::string(layer_media_type(m_format, written.compression)),
                          .digest = digest,
                          .size = static_cast<std::int64_t>(written.compressed_size)};
    log_event(LogLevel::info, LogEvent::layer_written,
              str_cat("  layer ", digest.short_str(), ": ", entries.size(), " path(s), ",
                      format_bytes(written.compressed_size)),
              {{"digest", digest.str()},
               {"size", static_cast<std::int64_t>(written.compressed_size)},
               {"paths", static_cast<std::int64_t>(entries.size())},
               {"seconds", seconds_since(start)}});
    return std::make_shared<FileLayer>(std::move(descriptor), written.diff_id, m_store.path(digest));
}

Result<LayerPtr> StoreLayerSink::write_empty() {
    // No entry is read, so any directory of kiln's serves as the tree.
    KILN_ASSIGN(RootFs unread, RootFs::open(m_store.root()));
    return write(unread, {});
}

}  // namespace kiln
