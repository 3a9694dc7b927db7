#pragma once
// An image written as a `docker load`-able tarball (`--tar-path`), also readable by skopeo's "docker-archive:".
//
// The archive holds manifest.json ([{"Config", "RepoTags", "Layers"}]), a `repositories` file (when there are
// tags and layers), the config as <config hex>.json and each layer blob as it is stored, compressed or not:
// <blob hex>.tar.gz, .tar.zst or .tar. docker load, and skopeo's docker-archive: (checked against Debian's skopeo
// 1.9), decompress layers themselves, so a layer is streamed once, byte for byte, and every file's name is the
// digest of its content.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "images/image.hpp"

namespace kiln {

// Splits a tagged reference ("127.0.0.1:5000/app:1") into repository and tag, as docker load requires of a
// RepoTag: a reference without a tag, or with a digest, is refused.
Result<std::pair<std::string, std::string>> split_repo_tag(std::string_view repo_tag);

// Writes `image` (whose serialized config and manifest are `documents`) as a docker-archive tarball at `path`,
// listing `repo_tags` (possibly none). Every layer is streamed and verified against its descriptor; the file
// appears at `path` only when complete, and a failed write leaves nothing there.
Status write_docker_archive(const std::string& path, const Image& image, const ImageDocuments& documents,
                            const std::vector<std::string>& repo_tags);

// The name a layer's blob gets inside the archive: "<hex>.tar.gz", "<hex>.tar.zst" or "<hex>.tar".
std::string docker_archive_layer_name(const Descriptor& layer);

}  // namespace kiln
