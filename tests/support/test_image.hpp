#pragma once
// Images assembled from hand-built layers (TestTar bytes) as OCI layouts, and pushed to a test registry with
// skopeo: base images kiln cannot or must not build itself, such as hostile layers, or owners and deletions
// spread over layers exactly as a test needs them.

#include <string>
#include <vector>

#include "common/error.hpp"

namespace kiln::test {

struct TestImage {
    std::vector<std::string> layer_digests;  // "sha256:…" of each layer blob as stored (gzip)
    std::string manifest_digest;
};

// Writes an OCI layout at `layout` (created if missing) holding one linux/amd64-or-host image tagged `tag`,
// whose layers are the uncompressed tars `layers`, stored gzip-compressed, bottom first.
Result<TestImage> write_test_image(const std::string& layout, const std::string& tag,
                                   const std::vector<std::string>& layers);

// Copies `layout:tag` to `reference` (a plain-HTTP registry) with skopeo, blobs unchanged.
Status push_layout(const std::string& layout, const std::string& tag, const std::string& reference);

}  // namespace kiln::test
