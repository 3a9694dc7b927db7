// kiln's registry transfers, one per invocation, timed from the inside: what scripts/bench-registry compares
// with `skopeo copy` of the same image to and from the same local registry (issue 5). A benchmark, not a
// test: ctest never runs it.
//
//   kiln_registry_bench make-image DIR [--layers N] [--layer-mb M]
//       writes an OCI layout at DIR (skopeo's "oci:DIR:bench") of one image with N layers (default 10), each
//       a gzip layer holding one file of M MB (default 50, 10^6 bytes) of random bytes: incompressible, so
//       every layer blob is about M MB whatever the compressor. Made with kiln's layer writer, so the diffIDs
//       are real.
//   kiln_registry_bench push --registry HOST:PORT --repo NAME [--tag TAG] --layout DIR [--jobs J]
//       pushes the layout's image (plain HTTP) with push_image: every layer and the config, then the manifest
//   kiln_registry_bench pull --registry HOST:PORT --ref NAME:TAG --dir DIR [--jobs J]
//       resolves the image (manifest and config), then pulls its layers into a BlobStore at DIR with
//       pull_blobs; the config and manifest are stored beside them, as skopeo's "oci:" destination stores
//       them
//
// push and pull print one line of "key value" pairs: seconds (wall clock of the whole transfer), bytes (every
// blob of the image: layers and config), mb_per_s (bytes / seconds / 1e6), jobs (blobs moved at once: --jobs,
// else TransferOptions' default) and manifest_digest. Logs go to stderr.

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "images/blob_store.hpp"
#include "images/image.hpp"
#include "images/index.hpp"
#include "images/layer.hpp"
#include "images/manifest.hpp"
#include "images/media_type.hpp"
#include "images/oci_layout.hpp"
#include "images/platform.hpp"
#include "layers/layer_writer.hpp"
#include "layers/rootfs.hpp"
#include "registry/client.hpp"
#include "registry/reference.hpp"
#include "registry/transfer.hpp"
#include "tests/bench/bench_support.hpp"

namespace kiln {
namespace {

// The ref name make-image gives the image in its layout.
constexpr std::string_view k_layout_tag = "bench";

using bench::check;
using bench::die;
using bench::seconds_of;

// "--name value" options after the subcommand; anything else is a usage error.
std::map<std::string, std::string> parse_options(const std::vector<std::string>& args, size_t first) {
    std::map<std::string, std::string> options;
    for (size_t i = first; i < args.size(); i += 2) {
        if (!args[i].starts_with("--") || i + 1 >= args.size())
            die("usage: see the top of tests/bench/registry_bench.cpp");
        options[args[i].substr(2)] = args[i + 1];
    }
    return options;
}

std::string required(const std::map<std::string, std::string>& options, const std::string& name) {
    auto found = options.find(name);
    if (found == options.end()) die("--" + name + " is required");
    return found->second;
}

std::string optional(const std::map<std::string, std::string>& options, const std::string& name,
                     const std::string& fallback) {
    auto found = options.find(name);
    return found == options.end() ? fallback : found->second;
}

TransferOptions transfer_options(const std::map<std::string, std::string>& options) {
    TransferOptions transfer;
    if (auto jobs = options.find("jobs"); jobs != options.end()) transfer.jobs = std::stoul(jobs->second);
    return transfer;
}

RegistryClient plain_http_client(const std::string& registry) {
    RegistryClientOptions options;
    options.plain_http.add(registry);
    options.user_agent = "kiln_registry_bench";
    return RegistryClient(std::move(options));
}

// Fills `path` with `bytes` bytes from xorshift64*, seeded per layer so that no two layers share a blob.
void write_random_file(const std::string& path, std::uint64_t bytes, std::uint64_t seed) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) die("create " + path);
    FdWriter file(fd.get(), path);
    std::vector<std::uint64_t> block((1 << 20) / sizeof(std::uint64_t));
    std::uint64_t state = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (std::uint64_t written = 0; written < bytes;) {
        for (std::uint64_t& word : block) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word = state * 0x2545F4914F6CDD1Dull;
        }
        size_t n =
            static_cast<size_t>(std::min<std::uint64_t>(bytes - written, block.size() * sizeof block[0]));
        check(file.write(reinterpret_cast<const char*>(block.data()), n), path);
        written += n;
    }
}

int make_image(const std::string& dir, size_t layer_count, std::uint64_t layer_mb) {
    if (path_exists(dir)) die(dir + " exists: make-image writes a new layout");
    // The random files and the blob store are scratch beside the layout; the layout hardlinks the blobs.
    std::string scratch = dir + ".making";
    std::filesystem::remove_all(scratch);
    std::string source_dir = scratch + "/source";
    check(make_directories(source_dir), source_dir);
    BlobStore store = check(BlobStore::open(scratch + "/store"), scratch);
    RootFs source = check(RootFs::open(source_dir), source_dir);

    Image image = Image::empty(host_platform());
    for (size_t i = 0; i < layer_count; ++i) {
        std::string name = str_cat("layer-", i, ".bin");
        write_random_file(source_dir + "/" + name, layer_mb * 1000000, i);
        BlobIngest ingest = check(store.begin(), "blob store");
        LayerWriteResult written = check(
            write_layer(source, {{LayerEntryKind::path, name}}, ingest, {.compression = {}, .timestamp = 0}),
            name);
        Digest digest = check(ingest.commit(written.digest), name);
        Descriptor descriptor{
            .media_type = std::string(layer_media_type(ManifestFormat::oci, written.compression)),
            .digest = digest,
            .size = static_cast<std::int64_t>(written.compressed_size)};
        image = image.with_layer(
            std::make_shared<FileLayer>(descriptor, written.diff_id, store.path(digest)),
            {.created = "1970-01-01T00:00:00Z", .created_by = "kiln_registry_bench " + name});
        std::filesystem::remove(source_dir + "/" + name);
    }
    ImageDocuments documents =
        check(write_image_documents(image, ManifestFormat::oci, store), "image documents");
    check(write_oci_layout(dir, image, documents, k_layout_tag), dir);
    std::filesystem::remove_all(scratch);

    std::uint64_t bytes = documents.config_bytes.size();
    for (const LayerPtr& layer : image.layers())
        bytes += static_cast<std::uint64_t>(layer->descriptor().size);
    std::printf("layers %zu bytes %llu manifest_digest %s\n", layer_count,
                static_cast<unsigned long long>(bytes), documents.manifest.digest.str().c_str());
    return 0;
}

// The image make-image wrote: its layers are the layout's blob files, its documents the layout's bytes
// verbatim, so that the manifest kiln pushes is the one skopeo pushes.
struct LayoutImage {
    Image image;
    ImageDocuments documents;
};

std::string layout_blob_path(const std::string& dir, const Digest& digest) {
    return str_cat(dir, "/blobs/", digest.algorithm(), "/", digest.encoded());
}

std::string read_layout_blob(const std::string& dir, const Descriptor& descriptor) {
    std::string bytes = check(read_file(layout_blob_path(dir, descriptor.digest), 8 << 20), dir);
    if (Digest::of_bytes(bytes) != descriptor.digest)
        die(str_cat(dir, ": blob ", descriptor.digest.str(), " is corrupt"));
    return bytes;
}

LayoutImage read_layout(const std::string& dir) {
    Index index = check(read_oci_layout_index(dir), dir);
    const Descriptor* chosen = nullptr;
    for (const Descriptor& entry : index.manifests) {
        auto ref = entry.annotations.find(std::string(k_ref_name_annotation));
        if (ref != entry.annotations.end() && ref->second == k_layout_tag) chosen = &entry;
    }
    if (!chosen) die(str_cat(dir, ": no image tagged ", k_layout_tag, " (make it with make-image)"));
    ImageDocuments documents;
    documents.manifest = *chosen;
    documents.manifest.annotations.clear();
    documents.manifest_bytes = read_layout_blob(dir, documents.manifest);
    documents.parsed_manifest = check(Manifest::parse(documents.manifest_bytes), dir);
    documents.config = documents.parsed_manifest.config;
    documents.config_bytes = read_layout_blob(dir, documents.config);
    ImageConfig config = check(ImageConfig::parse(documents.config_bytes), dir);
    const std::vector<Descriptor>& layer_descriptors = documents.parsed_manifest.layers;
    if (layer_descriptors.size() != config.diff_ids.size())
        die(dir + ": layers and diff_ids differ in number");
    std::vector<LayerPtr> layers;
    for (size_t i = 0; i < layer_descriptors.size(); ++i)
        layers.push_back(std::make_shared<FileLayer>(layer_descriptors[i], config.diff_ids[i],
                                                     layout_blob_path(dir, layer_descriptors[i].digest)));
    Image image = check(Image::create(std::move(config), std::move(layers)), dir);
    return {std::move(image), std::move(documents)};
}

std::uint64_t blob_bytes(const Manifest& manifest) {
    std::uint64_t bytes = static_cast<std::uint64_t>(manifest.config.size);
    for (const Descriptor& layer : manifest.layers) bytes += static_cast<std::uint64_t>(layer.size);
    return bytes;
}

void print_transfer(double seconds, std::uint64_t bytes, size_t jobs, const Digest& manifest_digest) {
    std::printf("seconds %.4f bytes %llu mb_per_s %.1f jobs %zu manifest_digest %s\n", seconds,
                static_cast<unsigned long long>(bytes), static_cast<double>(bytes) / seconds / 1e6, jobs,
                manifest_digest.str().c_str());
}

int push(const std::map<std::string, std::string>& options) {
    std::string registry = required(options, "registry");
    std::string name =
        str_cat(registry, "/", required(options, "repo"), ":", optional(options, "tag", "bench"));
    Reference destination = check(Reference::parse(name), name);
    // Reading the layout's three small documents is not part of the transfer.
    LayoutImage layout = read_layout(required(options, "layout"));
    RegistryClient client = plain_http_client(registry);
    PushOptions push_options;
    static_cast<TransferOptions&>(push_options) = transfer_options(options);
    double seconds = seconds_of([&] {
        check(push_image(client, {destination}, layout.image, layout.documents, push_options),
              "push " + name);
    });
    print_transfer(seconds, blob_bytes(layout.documents.parsed_manifest), push_options.jobs,
                   layout.documents.manifest.digest);
    return 0;
}

int pull(const std::map<std::string, std::string>& options) {
    std::string registry = required(options, "registry");
    std::string name = str_cat(registry, "/", required(options, "ref"));
    Reference reference = check(Reference::parse(name), name);
    std::string dir = required(options, "dir");
    RegistryClient client = plain_http_client(registry);
    BlobStore store = check(BlobStore::open(dir), dir);
    TransferOptions transfer = transfer_options(options);
    ResolvedImage resolved;
    double seconds = seconds_of([&] {
        resolved = check(client.resolve_image(reference), "resolve " + name);
        check(pull_blobs(client, reference, resolved.manifest.layers, store, transfer), "pull " + name);
        check(store.put(resolved.config_bytes), dir);
        check(store.put(resolved.manifest_bytes), dir);
    });
    print_transfer(seconds, blob_bytes(resolved.manifest), transfer.jobs, resolved.manifest_digest);
    return 0;
}

int run(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "make-image") {
        auto options = parse_options(args, 2);
        return make_image(args[1], std::stoul(optional(options, "layers", "10")),
                          std::stoull(optional(options, "layer-mb", "50")));
    }
    if (!args.empty() && args[0] == "push") return push(parse_options(args, 1));
    if (!args.empty() && args[0] == "pull") return pull(parse_options(args, 1));
    die("usage: see the top of tests/bench/registry_bench.cpp");
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
    kiln::bench::g_program = "kiln_registry_bench";
    return kiln::run(argc, argv);
}
