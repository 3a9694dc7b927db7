#pragma once
// What every stage of a build reads and none of them changes: the fixed inputs, made once before the first
// stage and shared read-only, as mold passes its Context&. The services among them (images, their
// filesystems, the snapshotter) are safe to use from several stages at once. What stages produce belongs to
// the scheduler, which hands each stage the finished stages it may read.

#include <cstdint>
#include <string>

#include "builder/host.hpp"
#include "builder/options.hpp"
#include "builder/plan/plan.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "builder/sources/context.hpp"
#include "builder/sources/image_filesystems.hpp"
#include "builder/sources/image_source.hpp"
#include "builder/sources/url_source.hpp"
#include "dockerfile-parser/stages.hpp"
#include "registry/early_uploads.hpp"

namespace kiln {

// The layer cache (builder/cache/) uses BuildInputs to key steps; stages reach it through this pointer.
class LayerCache;

struct BuildInputs {
    const BuildOptions& options;
    const HostEnvironment& environment;
    const HostFacts& host;
    const dockerfile::Dockerfile& dockerfile;
    const BuildPlan& plan;
    const BuildContext& context;
    ImageSource& images;
    ImageFilesystems& image_filesystems;
    UrlDownloads& downloads;  // ADD's URLs, each fetched once
    Snapshotter& snapshotter;
    LayerSink& layers;  // where the snapshotter writes layers; a step that must have one takes its empty layer here
    LayerCache* cache = nullptr;  // --cache; null without it
    EarlyUploads* uploads = nullptr;  // the target image's new layers go up as they are made; null without a push
    std::string work_dir;            // kiln's private directory for this build
    std::string cache_dir;           // RUN --mount=type=cache directories live below it
    Platform platform;                 // the build's target platform (--custom-platform, else this machine's)
    std::int64_t created_seconds = 0;  // the time written into configs and history
};

}  // namespace kiln
