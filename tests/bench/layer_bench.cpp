// kiln's layer operations, one per invocation, timed from the inside: what scripts/bench-layers compares with
// GNU tar, igzip, zstd and OpenSSL. A benchmark, not a test: ctest never runs it.
//
//   kiln_layer_bench extract BLOB DIR             apply a layer (any compression) to DIR as a base image is
//                                                   materialized: read-ahead, both digests checked
//   kiln_layer_bench write DIR OUT gzip|zstd|none   write every entry below DIR as one layer to OUT ("-": discard)
//   kiln_layer_bench sha256 MIB                     kiln's SHA-256 over MIB MiB of memory, in 16 KiB updates
//                                                   (wall and CPU time)
//   kiln_layer_bench snapshot ROOTFS COUNT SCRATCH  a RUN adds COUNT files: walk snapshot (scan after + diff)
//                                                   against an overlay upper scan of the same change (SCRATCH
//                                                   holds the upper directory)
//
// Each prints "key value" pairs on one line; times are seconds of wall clock.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "layers/apply_image.hpp"
#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/stream.hpp"
#include "images/image.hpp"
#include "images/layer.hpp"
#include "layers/compression.hpp"
#include "layers/layer_writer.hpp"
#include "layers/rootfs.hpp"
#include "layers/snapshot_walk.hpp"
#ifdef KILN_BENCH_OVERLAY
#include "layers/snapshot_overlay.hpp"
#include "tests/bench/bench_support.hpp"
#endif

namespace kiln {
namespace {

using bench::check;
using bench::die;
using bench::seconds_of;

// Discards bytes (the layer's destination when only the work of making it is measured).
class NullWriter final : public Writer {
public:
    using Writer::write;
    Status write(const char*, size_t) override { return {}; }
};

int extract(const std::string& blob, const std::string& dir) {
    // The digests a manifest and config would give; computed first, outside the timing.
    UniqueFd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) die("open " + blob);
    FdReader file(fd.get(), blob);
    HashingReader blob_hash(file);
    auto tar = check(make_auto_decompressor(blob_hash), blob);
    HashingReader tar_hash(*tar);
    NullWriter null;
    check(copy_stream(tar_hash, null), blob);
    Descriptor descriptor{.media_type = std::string(media_type::oci_layer_gzip),
                          .digest = check(Digest::parse(blob_hash.finish_digest()), blob),
                          .size = static_cast<std::int64_t>(blob_hash.size())};
    Digest diff_id = check(Digest::parse(tar_hash.finish_digest()), blob);
    ImageConfig config;
    config.diff_ids = {diff_id};
    std::vector<LayerPtr> layers = {std::make_shared<FileLayer>(descriptor, diff_id, blob)};
    Image image = check(Image::create(std::move(config), std::move(layers)), "image");

    check(make_directories(dir), dir);
    RootFs root = check(RootFs::open(dir), dir);
    double seconds = seconds_of([&] { check(extract_image(image, root, OwnershipFailure::error), blob); });
    std::printf("seconds %.4f uncompressed_bytes %llu\n", seconds,
                static_cast<unsigned long long>(tar_hash.size()));
    return 0;
}

double cpu_seconds() {
    timespec now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

int write(const std::string& dir, const std::string& out, const std::string& compression_name) {
    CompressionOptions compression;
    if (compression_name == "gzip") compression.compression = Compression::gzip;
    else if (compression_name == "zstd") compression.compression = Compression::zstd;
    else if (compression_name == "none") compression.compression = Compression::none;
    else die("unknown compression " + compression_name);
    RootFs root = check(RootFs::open(dir), dir);
    // The entries a COPY of the whole tree would give; listing them is not part of writing.
    Snapshot tree;
    double scan_seconds = seconds_of([&] { tree = check(scan_snapshot(root), "scan " + dir); });
    std::vector<LayerEntry> entries;
    entries.reserve(tree.size());
    for (size_t i = 0; i < tree.size(); ++i) entries.push_back({LayerEntryKind::path, std::string(tree.path(i))});

    UniqueFd out_fd;
    NullWriter null;
    std::unique_ptr<FdWriter> file;
    if (out != "-") {
        out_fd = UniqueFd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!out_fd) die("open " + out);
        file = std::make_unique<FdWriter>(out_fd.get(), out);
    }
    Writer& sink = file ? static_cast<Writer&>(*file) : null;
    LayerWriteResult written;
    double cpu_start = cpu_seconds();
    double seconds = seconds_of([&] {
        written = check(write_layer(root, entries, sink, {.compression = compression, .timestamp = 0}), "write");
    });
    // All threads' CPU time (the compressor's workers included).
    double cpu = cpu_seconds() - cpu_start;
    std::printf("seconds %.4f cpu_seconds %.4f scan_seconds %.4f entries %zu uncompressed_bytes %llu "
                "compressed_bytes %llu\n",
                seconds, cpu, scan_seconds, entries.size(), static_cast<unsigned long long>(written.uncompressed_size),
                static_cast<unsigned long long>(written.compressed_size));
    return 0;
}

// Also in CPU time: `openssl speed` divides by user CPU time, which a loaded machine does not inflate.
int sha256(size_t mebibytes) {
    std::vector<char> block(16 << 10);
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + 7);
    size_t blocks = mebibytes * 64;
    Sha256 hash;
    double cpu_start = cpu_seconds();
    double seconds = seconds_of([&] {
        for (size_t i = 0; i < blocks; ++i) hash.update(block.data(), block.size());
    });
    double cpu = cpu_seconds() - cpu_start;
    std::printf("seconds %.4f cpu_seconds %.4f bytes %zu digest %s\n", seconds, cpu, blocks * block.size(),
                hash.finish_hex().c_str());
    return 0;
}

// Adds `count` small files below `dir`/kiln-bench-added, 100 to a directory, as a RUN step might.
void add_files(const std::string& dir, size_t count) {
    std::string top = dir + "/kiln-bench-added";
    check(make_directories(top), top);
    for (size_t i = 0; i < count; ++i) {
        std::string sub = top + "/d" + std::to_string(i / 100);
        if (i % 100 == 0) check(make_directories(sub), sub);
        check(write_file_atomic(sub + "/f" + std::to_string(i % 100), "added " + std::to_string(i) + "\n"), sub);
    }
}

int snapshot(const std::string& rootfs, size_t count, const std::string& scratch) {
    RootFs root = check(RootFs::open(rootfs), rootfs);
    std::filesystem::remove_all(rootfs + "/kiln-bench-added");
    Snapshot before = check(scan_snapshot(root), "scan before");
    add_files(rootfs, count);
    size_t changes = 0;
    size_t after_entries = 0;
    double walk_seconds = seconds_of([&] {
        Snapshot after = check(scan_snapshot(root), "scan after");
        after_entries = after.size();
        changes = diff_snapshots(before, after).size();
    });
    std::filesystem::remove_all(rootfs + "/kiln-bench-added");
    std::printf("walk_seconds %.4f entries %zu changes %zu", walk_seconds, after_entries, changes);
#ifdef KILN_BENCH_OVERLAY
    // The same change as overlay records it: the new files in a fresh upper directory over the rootfs.
    std::string upper_dir = scratch + "/upper";
    std::filesystem::remove_all(upper_dir);
    check(make_directories(upper_dir), upper_dir);
    add_files(upper_dir, count);
    RootFs upper = check(RootFs::open(upper_dir), upper_dir);
    size_t overlay_entries = 0;
    double overlay_seconds = seconds_of([&] {
        overlay_entries = check(scan_overlay_upper(upper, root), "scan upper").entries.size();
    });
    std::filesystem::remove_all(upper_dir);
    std::printf(" overlay_seconds %.4f overlay_changes %zu", overlay_seconds, overlay_entries);
#else
    (void)scratch;
#endif
    std::printf("\n");
    return 0;
}

int run(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "extract") return extract(args[1], args[2]);
    if (args.size() == 4 && args[0] == "write") return write(args[1], args[2], args[3]);
    if (args.size() == 2 && args[0] == "sha256") return sha256(std::stoul(args[1]));
    if (args.size() == 4 && args[0] == "snapshot") return snapshot(args[1], std::stoul(args[2]), args[3]);
    die("usage: see the top of tests/bench/layer_bench.cpp");
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
    kiln::bench::g_program = "kiln_layer_bench";
    return kiln::run(argc, argv);
}
