#pragma once
// What a build leaves behind: a docker-archive tarball, an OCI layout, the image pushed to each destination,
// and the result files a pipeline's next step reads.

#include <vector>

#include "builder/options.hpp"
#include "images/image.hpp"
#include "registry/client.hpp"
#include "registry/reference.hpp"
#include "registry/transfer.hpp"

namespace kiln {

// Parses every --destination up front, so that a typo fails the build before anything is built.
Result<std::vector<Reference>> parse_destinations(const BuildOptions& options);

// Writes the local outputs, pushes (unless --no-push: every blob first, each manifest last, so a tag only ever
// names a complete image), then writes the result files.
Status write_outputs(const BuildOptions& options, const std::vector<Reference>& destinations, const Image& image,
                     const ImageDocuments& documents, RegistryClient* push_client,
                     const PushOptions& push = {});

}  // namespace kiln
