#pragma once
// An image written into an OCI image layout directory (`--oci-layout-path`): oci-layout, index.json and
// blobs/<algorithm>/<encoded>, readable by skopeo's and umoci's "oci:" transports.

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "images/descriptor.hpp"
#include "images/image.hpp"
#include "images/index.hpp"

namespace kiln {

// The index.json annotation that names an image in a layout (skopeo's "oci:<dir>:<ref>").
inline constexpr std::string_view k_ref_name_annotation = "org.opencontainers.image.ref.name";

// True when `ref_name` follows the image-layout grammar: alphanumeric components separated by one of -._:@+
// or "--", joined by "/" ("latest", "127.0.0.1:5000/app:1").
bool is_valid_ref_name(std::string_view ref_name);

// Writes `image` (whose serialized config and manifest are `documents`) into the layout at `directory`, under
// `ref_name` when it is not empty. A missing or empty directory becomes a new layout; an existing layout keeps
// its other images and loses only an entry with the same ref name; any other non-empty directory is refused.
// Layer files are hardlinked where the filesystem allows, otherwise streamed and verified. Blobs are published
// before index.json, which is replaced atomically. Returns the descriptor added to index.json.
Result<Descriptor> write_oci_layout(const std::string& directory, const Image& image, const ImageDocuments& documents,
                                    std::string_view ref_name);

// Reads and parses the index.json of the layout at `directory`.
Result<Index> read_oci_layout_index(const std::string& directory);

}  // namespace kiln
