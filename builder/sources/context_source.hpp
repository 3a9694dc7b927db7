#pragma once
// Where --context points, in Kaniko's spellings, made into a directory the build can read:
//   DIR, dir://DIR                  a directory, used where it is
//   tar://PATH, tar://stdin         a tar archive (plain, gzip, bzip2, xz or zstd), unpacked into the work directory
//   https://…, http://… (not .git)  the same, downloaded first
//   git://…, https://….git, ssh://…, git@host:… a git repository (git_source.hpp), with #ref and :subdir
// Buckets (s3://, gs://) and Azure blobs are refused, naming what works instead. `--dockerfile -` reads the
// Dockerfile from stdin.

#include <cstdint>
#include <map>
#include <string>

#include "builder/sources/git_source.hpp"
#include "registry/http.hpp"
#include "common/error.hpp"

namespace kiln {

struct ContextInputs {
    std::string context;     // --context as given
    std::string sub_path;    // --context-sub-path: the directory inside the context that is the build's context
    std::string dockerfile;  // --dockerfile as given
    std::string work_dir;    // the build's private directory: unpacked contexts and a Dockerfile from stdin go there
    int stdin_fd = 0;        // where tar://stdin and --dockerfile - read
    GitOptions git;          // --git
    // The process's environment, for git (its credentials, proxies and CA settings).
    std::map<std::string, std::string, std::less<>> environment;
    // For an https:// context: the client's timeouts, and the most bytes it may download.
    HttpClientOptions http;
    std::uint64_t max_download_size = k_default_max_download_size;
};

struct PreparedContext {
    std::string directory;  // the context, as a directory
    std::string dockerfile;  // the Dockerfile's path: as given, relative to the context, or from stdin
};

Result<PreparedContext> prepare_context(const ContextInputs& inputs);

}  // namespace kiln
