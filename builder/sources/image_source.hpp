#pragma once
// Where a stage starts from: FROM scratch, a local OCI layout named by --build-context, or an image in a
// registry, pulled into the build's blob store with every blob verified.

#include <string>

#include "builder/session.hpp"
#include "images/image.hpp"
#include "layers/extract.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// Resolves the image `name` (already expanded; not a stage name) for `platform`, with its layers in the store.
Result<Image> load_base_image(BuildSession& session, const std::string& name, const Platform& platform);

// Extracts every layer of `image`, in order, into the empty directory `rootfs`, checking each layer's bytes
// against its digest and its tar against its diffID.
Status materialize_rootfs(const Image& image, const RootFs& rootfs, OwnershipFailure ownership_failure);

// Extracts one layer into `rootfs`, checking its bytes against its digest and its tar against its diffID.
// WhiteoutFormat::overlay makes a layer directory for the overlay snapshotter.
Result<ExtractStats> extract_layer(const Layer& layer, const RootFs& rootfs, OwnershipFailure ownership_failure,
                     WhiteoutFormat whiteout_format = WhiteoutFormat::apply);

// How to treat layer ownership that cannot be applied: an error with a full id range, a warning in the
// single-id user namespace where every owner collapses to 0.
OwnershipFailure ownership_failure_policy();

}  // namespace kiln
