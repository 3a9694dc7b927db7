#pragma once
// Image layers, as the image describes them, applied to a directory: each layer's bytes checked against its
// digest and its tar against its diffID while it is extracted.

#include "images/image.hpp"
#include "images/layer.hpp"
#include "layers/extract.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// Extracts one layer into `rootfs`, checking its bytes against its digest and its tar against its diffID.
// WhiteoutFormat::overlay makes a layer directory for the overlay snapshotter.
Result<ExtractStats> extract_layer(const Layer& layer, const RootFs& rootfs, OwnershipFailure ownership_failure,
                                   WhiteoutFormat whiteout_format = WhiteoutFormat::apply);

// Extracts every layer of `image`, in order, into the empty directory `rootfs`.
Status extract_image(const Image& image, const RootFs& rootfs, OwnershipFailure ownership_failure);

}  // namespace kiln
