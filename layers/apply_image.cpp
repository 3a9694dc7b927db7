#include "layers/apply_image.hpp"

#include <chrono>

#include "common/log.hpp"
#include "common/progress.hpp"

#include "common/stream.hpp"
#include "common/strings.hpp"
#include "layers/compression.hpp"

namespace kiln {

Status extract_image(const Image& image, const RootFs& rootfs, OwnershipFailure ownership_failure) {
    for (const LayerPtr& layer : image.layers()) KILN_TRY(extract_layer(*layer, rootfs, ownership_failure));
    return {};
}

Result<ExtractStats> extract_layer(const Layer& layer, const RootFs& rootfs, OwnershipFailure ownership_failure,
                                   WhiteoutFormat whiteout_format) {
    const Descriptor& descriptor = layer.descriptor();
    std::string name = descriptor.digest.str();
    KILN_ASSIGN(auto blob, layer.open_blob());
    auto start = std::chrono::steady_clock::now();
    TransferProgress progress(str_cat("extract ", descriptor.digest.short_str()), static_cast<std::uint64_t>(descriptor.size));
    ProgressReader counted(*blob, progress);
    HashingReader blob_hash(counted);
    KILN_ASSIGN(auto tar, with_context(make_auto_decompressor(blob_hash), str_cat("layer ", name)));
    HashingReader tar_hash(*tar);
    ExtractStats stats;
    {
        // Reading, hashing and decompressing run on a second thread while this one creates the files.
        std::unique_ptr<Reader> read_ahead = make_read_ahead_reader(tar_hash);
        ExtractOptions options{.layer_name = name, .ownership_failure = ownership_failure};
        options.whiteout_format = whiteout_format;
        KILN_ASSIGN(stats, apply_layer(rootfs, *read_ahead, options));
        // The tar may end before its stream does (padding after the end-of-archive blocks): hash it all.
        Buffer buffer(1 << 16);
        while (true) {
            KILN_ASSIGN(size_t n, read_ahead->read(buffer.data(), buffer.size()));
            if (n == 0) break;
        }
    }
    if (blob_hash.finish_digest() != descriptor.digest.str())
        return fail(str_cat("layer ", name, ": its content does not match its digest"));
    if (tar_hash.finish_digest() != layer.diff_id().str())
        return fail(str_cat("layer ", name, ": its uncompressed content does not match diffID ",
                            layer.diff_id().str()));
    log_event(LogLevel::info, LogEvent::layer_extracted, "",
              {{"digest", name}, {"seconds", seconds_since(start)}});
    return stats;
}

}  // namespace kiln
