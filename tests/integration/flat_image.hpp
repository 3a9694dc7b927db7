#pragma once
// An image as a container sees it, for comparing two builders' results: the filesystem left after applying
// its layers in order, and the runtime part of its config. Flattening is done here with libarchive,
// independently of kiln's own extractor, so that a bug there cannot hide itself.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace kiln::test {

// One path of a flattened image. mtimes are left out: two builds never agree on them.
struct TreeEntry {
    enum class Kind { regular, directory, symlink, character_device, block_device, fifo };
    Kind kind = Kind::regular;
    unsigned mode = 0;  // permission bits with setuid, setgid and sticky (07777)
    unsigned uid = 0;
    unsigned gid = 0;
    std::uint64_t size = 0;     // regular files
    std::string sha256;         // regular files: hex of the content
    std::string link_target;    // symlinks
    unsigned device_major = 0;  // devices
    unsigned device_minor = 0;

    bool operator==(const TreeEntry&) const = default;
};

// Absolute path ("/etc/passwd") → entry; the root directory itself is not listed.
using ImageTree = std::map<std::string, TreeEntry>;

// "file 0644 0:0 12 B sha256:ab12…", "symlink -> /bin/busybox", "dir 0755 0:0".
std::string describe(const TreeEntry& entry);

struct PulledImage {
    nlohmann::json manifest;
    nlohmann::json config;
    std::vector<std::string> layer_files;  // the layer blobs, bottom first
};

// Copies `reference` from a plain-HTTP registry into the skopeo `dir:` directory `dir` (manifest and blobs as
// pushed, no conversion) and reads its manifest and config.
Result<PulledImage> pull_image(const std::string& reference, const std::string& dir);

// Applies `layer_files` (tar, gzip or zstd) in order as the OCI image spec says: whiteouts and opaque
// directories hide what lower layers had, a non-directory replaces a directory with its contents, a hard link
// is an entry with its target's content, parents missing from the tar are directories 0755 0:0. A path that
// escapes the root is an error.
Result<ImageTree> flatten_layers(const std::vector<std::string>& layer_files);

// The paths a layer lists, normalised ("/dev", "/.wh.dev"), in tar order: for checks on what one layer holds.
Result<std::vector<std::string>> layer_paths(const std::string& layer_file);

// One line per path on which `left` and `right` disagree ("/x: only in kiln: file 0644 …"), sorted by path.
std::vector<std::string> tree_differences(const ImageTree& left, const ImageTree& right,
                                          const std::string& left_name, const std::string& right_name);

// The fields of an image config's "config" object that a container runs with: User, Env, Entrypoint, Cmd,
// WorkingDir, Labels, ExposedPorts, Volumes, StopSignal, Healthcheck, Shell, OnBuild. A field that is absent,
// null, "" or an empty array or object is left out: the runtime treats those alike.
nlohmann::json runtime_config(const nlohmann::json& image_config);

// One line per runtime-config field on which `left` and `right` disagree.
std::vector<std::string> config_differences(const nlohmann::json& left, const nlohmann::json& right,
                                            const std::string& left_name, const std::string& right_name);

}  // namespace kiln::test
