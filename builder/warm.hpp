#pragma once
// `kiln warm`, Kaniko's warmer: fetches base images into <--cache-dir>/images (see warm_images.hpp), so that
// builds in pods that start with nothing take them from there, and still build when the registry is down. With
// --extract, it also extracts their layers where builds with the overlay snapshotter stack them as they are
// (extracted_layer_store.hpp): a warming job on a node's persistent volume saves every build the extraction.

#include <string>
#include <vector>

#include "builder/host.hpp"
#include "builder/options.hpp"
#include "common/error.hpp"

namespace kiln {

struct WarmOptions {
    // The flags warm shares with the build: --cache-dir, --dockerfile, --build-arg, --custom-platform, and the
    // registry, TLS, credential and mirror flags.
    BuildOptions settings;
    std::vector<std::string> images;  // --image, in order
    bool force = false;               // --force: fetch again what is already warm
    bool extract = false;             // --extract: also extract each layer into <cache-dir>/extracted
};

// Warms every --image, then every image --dockerfile's FROM lines name. The first image that cannot be
// warmed ends the run with its error; what was warmed before it stays.
Status run_warm(const WarmOptions& options, const HostEnvironment& environment);

}  // namespace kiln
