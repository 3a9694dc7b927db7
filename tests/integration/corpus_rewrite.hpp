#pragma once
// Points the FROM lines of a Kaniko corpus Dockerfile at a local registry, so that kiln and buildah both
// build it offline from the same kiln-made busybox base. Only instruction lines are touched: comments, blank
// lines and the continuation lines of other instructions stay as they are. With R = "<registry>/mirror":
//
//  R1  FROM <image>, where <image> is neither `scratch` nor the name of an earlier stage (both compared
//      case-insensitively), becomes FROM R/<path>[:<tag>]. The registry host of <image> (docker.io, gcr.io,
//      …) is dropped and a tag is kept. A pinned digest can never match a local image, so it is dropped too:
//      the tag stays when there is one, otherwise the digest becomes the tag `<algorithm>-<first 12 hex>`:
//        alpine@sha256:5ce5f501c457…  →  R/alpine:sha256-5ce5f501c457
//        docker.io/library/busybox:latest@sha256:afe6…  →  R/library/busybox:latest
//  R2  A FROM image that mixes literal text and variables keeps its variables; the literal repository
//      in front gets the prefix:  busybox${VARIANT}:1.3${VERSION}  →  R/busybox${VARIANT}:1.3${VERSION}
//  R3  A FROM image that starts with a variable stays as written. The global ARGs (before the first FROM)
//      that feed it get R1 or R2 on their default value, quotes kept:  ARG IMAGE_NAME="busybox:latest"  →
//      ARG IMAGE_NAME="R/busybox:latest",  ARG B=alpine:${A}  →  ARG B=R/alpine:${A}. A default that is
//      empty, `scratch` or starts with a variable is kept, and the variables it starts with are followed.
//  R4  Everything else stays: stage references, `scratch`, --platform, `AS name`, the keyword's spelling.
//
// A FROM or ARG line that continues onto the next line is refused rather than guessed at.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::test {

struct RewrittenDockerfile {
    std::string text;
    // The references under R that the rewritten FROMs resolve to with the global ARG defaults and
    // `build_args`, each with an explicit tag (":latest" when the FROM had none), deduplicated, in order of
    // appearance. The test pushes its base image under each of them.
    std::vector<std::string> mirror_references;
};

// Applies R1–R4 to `dockerfile`; `registry` is "host:port"; `build_args` are the NAME=VALUE overrides that
// both builders get (entries without '=' come from the environment and cannot name a base image).
Result<RewrittenDockerfile> rewrite_for_local_registry(std::string_view dockerfile,
                                                       const std::string& registry,
                                                       const std::vector<std::string>& build_args);

// R1 (or R2 when `image` holds variables) for one image reference.
std::string mirror_image(std::string_view image, const std::string& registry);

}  // namespace kiln::test
