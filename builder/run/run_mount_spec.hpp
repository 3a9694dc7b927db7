#pragma once
// RUN --mount values, parsed as BuildKit's Dockerfile frontend parses them: comma-separated key=value fields
// (CSV quoting allowed), keys case-insensitive, every value shell-expanded, defaults and combinations
// checked.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "builder/sources/source_directory.hpp"
#include "dockerfile-parser/instructions.hpp"

namespace kiln {

enum class RunMountType { bind, cache, tmpfs, secret, ssh };

// How concurrent builds share a cache mount.
enum class CacheSharing {
    shared,    // everyone uses the one directory at once
    unshared,  // Dockerfile "private": a fresh directory when the shared one is in use
    locked,    // one step at a time; the others wait
};

// One --mount, as written (targets are not yet made absolute against WORKDIR).
struct RunMountRequest {
    RunMountType type = RunMountType::bind;
    std::string from;    // a stage name or index, or an image; empty: the build context (bind) or nothing
    std::string source;  // path inside `from`; a secret's id when `id` is absent
    std::string target;
    std::string id;         // cache and secret
    bool read_only = true;  // default: read-only for bind, secret and ssh; writable for cache and tmpfs
    bool required = false;  // secret and ssh
    std::optional<std::uint64_t> size;  // tmpfs, bytes
    std::optional<CacheSharing> sharing;
    std::optional<std::uint32_t> mode;  // cache, secret, ssh
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::optional<std::string> env;  // secret: also expose it as this environment variable
};

// Expands one value with the stage's ARG/ENV scope.
using MountValueExpander = std::function<Result<std::string>(std::string_view)>;

// One RUN --mount, its values expanded and its target made absolute against WORKDIR.
struct PlannedMount {
    std::string text;  // the --mount value as written, for errors
    RunMountRequest request;
    std::string target;  // absolute; empty for a secret exposed only as an environment variable
    SourceRef from;      // bind and cache mounts: what `from=` names (the context when absent)
};

// Parses one --mount value. Errors read like BuildKit's ("unexpected key 'foo' in 'foo=bar'") and never quote
// a secret, since a --mount value holds none.
Result<RunMountRequest> parse_run_mount(std::string_view value, const MountValueExpander& expand);

// The `from` of every bind or cache mount of `run`, unexpanded: earlier stages the RUN reads, for the
// planner.
std::vector<std::string> run_mount_sources(const dockerfile::RunInstruction& run);

// "bind", "cache", …
const char* run_mount_type_name(RunMountType type);

}  // namespace kiln
