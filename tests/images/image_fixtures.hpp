#pragma once
// Real layers and images for the images tests: tars built with libarchive, gzipped with zlib, stored in a
// BlobStore; plus the external tools (skopeo, umoci) that check what kiln writes.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/process.hpp"
#include "images/blob_store.hpp"
#include "images/image.hpp"

namespace kiln::testing {

struct TestFile {
    std::string path;  // inside the layer, relative
    std::string content;
    mode_t mode = 0644;
};

// An uncompressed tar of `files` (regular files; their parent directories are added first).
std::string make_tar(const std::vector<TestFile>& files);
// gzip (RFC 1952) of `bytes`.
std::string gzip_bytes(std::string_view bytes);

// Stores gzip(tar(files)) in `store` and returns the FileLayer that describes it.
LayerPtr store_gzip_layer(const BlobStore& store, const std::vector<TestFile>& files);

// A layer served from memory, whose bytes need not match its descriptor: for testing verification.
LayerPtr make_bytes_layer(Descriptor descriptor, Digest diff_id, std::string bytes);

// The files of the two layers of make_test_image(), in layer order.
std::vector<TestFile> first_layer_files();
std::vector<TestFile> second_layer_files();

// linux/amd64, two gzip layers, an ENV, a CMD and a LABEL, with a history entry per layer.
Image make_test_image(const BlobStore& store);

// Every regular file in the tar at `path`, by name (small archives only). Empty when it cannot be read.
std::map<std::string, std::string> read_tar_files(const std::string& path);

// The absolute path of `tool` in PATH, empty when it is not installed.
std::string find_tool(const std::string& tool);

// Runs a command, capturing its output; a failure to start counts as exit 127.
ProcessResult run(const std::vector<std::string>& argv);

// ../shared/corpora, empty when this checkout has no corpora beside it.
std::string corpora_dir();

}  // namespace kiln::testing
