#pragma once
// Git contexts, in Kaniko's and BuildKit's spellings: git://host/repo, https://host/repo.git, ssh://… and
// git@host:repo, each with an optional "#ref" (a branch, a tag, refs/… or a commit) and ":subdir" (the context is
// that directory of the checkout). The git command fetches the one commit wanted, shallow where it can, into the
// build's work directory; Kaniko's --git options (branch, single-branch, recurse-submodules, insecure-skip-tls)
// and its GIT_USERNAME / GIT_PASSWORD (or GIT_TOKEN) credentials apply.

#include <map>
#include <string>
#include <string_view>

#include "builder/options.hpp"
#include "common/error.hpp"

namespace kiln {

struct GitUrl {
    std::string repository;  // what git fetches from, without the fragment
    std::string ref;         // empty: the remote's HEAD
    std::string subdir;      // empty: the checkout's root
};

// True for the context spellings that name a git repository.
bool is_git_context(std::string_view context);

// Splits a git context into repository, ref and subdirectory; refuses a subdirectory that leaves the checkout
// and a repository git would read from the local disk.
Result<GitUrl> parse_git_context(std::string_view context);

// Applies one --git value to `options`; an unknown key or a value that is not a boolean is an error.
Status apply_git_option(GitOptions& options, std::string_view value);

struct GitFetch {
    GitUrl url;
    GitOptions options;
    std::string directory;  // made by the fetch; must not exist
    // The process's environment (credentials, proxies, SSL_CERT_FILE…), passed on to git.
    std::map<std::string, std::string, std::less<>> environment;
};

// Fetches the wanted commit into fetch.directory and checks it out; returns that directory (the caller takes
// url.subdir inside it). Errors name the context and what git said.
Result<std::string> fetch_git_context(const GitFetch& fetch);

}  // namespace kiln
