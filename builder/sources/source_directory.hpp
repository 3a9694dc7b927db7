#pragma once
// What COPY, ADD and RUN mounts read from: a SourceRef names it (the build context, a stage, an image), and a
// SourceDirectory is where it is once the build has it.

#include <cstddef>
#include <string>
#include <vector>

#include "dockerfile-parser/dockerignore.hpp"

namespace kiln {

// Where COPY, ADD or a RUN mount reads from.
struct SourceRef {
    enum class Kind { context, stage, image };
    Kind kind = Kind::context;
    size_t stage = 0;   // Kind::stage: the stage's index
    std::string image;  // Kind::image: the reference or --build-context name, as expanded

    static SourceRef context() { return {}; }
    static SourceRef of_stage(size_t index) { return SourceRef{.kind = Kind::stage, .stage = index, .image = {}}; }
    static SourceRef of_image(std::string name) { return SourceRef{.kind = Kind::image, .stage = 0, .image = std::move(name)}; }
    bool operator==(const SourceRef&) const = default;
};

// The directory a SourceRef names, with what reading it must respect.
struct SourceDirectory {
    std::string path;  // absolute or relative to kiln's working directory
    // The build context's ignore rules (.dockerignore); null for a stage or an image.
    const dockerfile::IgnoreMatcher* ignore = nullptr;
    // A stage whose rootfs is an overlay mount: its layer directories, topmost first (an idmapped sandbox
    // mounts them instead of the overlay, which cannot be idmapped).
    std::vector<std::string> layers;
    bool is_context = false;
};

}  // namespace kiln
