#include "builder/context.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

bool has_wildcard(std::string_view text) { return text.find_first_of("*?[") != std::string_view::npos; }

Result<std::vector<std::string>> list_in_root(const RootFs& root, const std::string& dir) {
    KILN_ASSIGN(UniqueFd fd, root.open(dir, O_RDONLY | O_DIRECTORY));
    return list_directory(fd.get(), root.display(dir));
}

std::string join_path(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

}  // namespace

Result<BuildContext> BuildContext::open(const std::string& dir, const std::string& dockerfile_path) {
    KILN_ASSIGN(RootFs root, with_context(RootFs::open(dir), "build context"));
    std::optional<dockerfile::IgnoreMatcher> ignore;
    std::string beside = dockerfile_path + ".dockerignore";
    std::string ignore_file = path_exists(beside) ? beside : dir + "/.dockerignore";
    if (path_exists(ignore_file)) {
        KILN_ASSIGN(std::string text, read_file(ignore_file, 4 << 20));
        KILN_ASSIGN(ignore, dockerfile::IgnoreMatcher::parse(text, ignore_file));
        log_debug("using ignore rules from ", ignore_file);
    }
    return BuildContext(std::move(root), std::move(ignore));
}

Result<std::vector<std::string>> expand_sources(const RootFs& root, std::string_view pattern,
                                                const dockerfile::IgnoreMatcher* ignore) {
    std::string cleaned = clean_path(pattern);
    std::vector<std::string> matches;
    if (!has_wildcard(cleaned)) {
        bool excluded = ignore && !cleaned.empty() && ignore->matches(cleaned) && !ignore->must_descend(cleaned);
        if (excluded || !root.open(cleaned, O_PATH))
            return fail(str_cat("file not found in build context or excluded by .dockerignore: ",
                                cleaned.empty() ? "." : cleaned));
        return std::vector<std::string>{cleaned};
    }
    // Walk one path component at a time, keeping the directories that match so far.
    std::vector<std::string> current = {""};
    std::vector<std::string> components = split(cleaned, '/');
    for (size_t level = 0; level < components.size(); ++level) {
        const std::string& component = components[level];
        std::vector<std::string> next;
        for (const std::string& dir : current) {
            if (!has_wildcard(component)) {
                std::string candidate = join_path(dir, component);
                if (root.open(candidate, O_PATH)) next.push_back(candidate);
                continue;
            }
            auto names = list_in_root(root, dir);
            if (!names) continue;  // not a directory: nothing below it can match
            for (const std::string& name : *names)
                if (::fnmatch(component.c_str(), name.c_str(), 0) == 0) next.push_back(join_path(dir, name));
        }
        current = std::move(next);
    }
    for (const std::string& path : current)
        if (!ignore || !ignore->matches(path) || ignore->must_descend(path)) matches.push_back(path);
    if (matches.empty()) return fail(str_cat("no source files were specified: \"", pattern, "\" matches nothing"));
    return matches;
}

Result<std::string> path_in_root(const RootFs& root, int fd) {
    char resolved_root[PATH_MAX];
    if (!::realpath(root.path().c_str(), resolved_root)) return fail_errno(str_cat("realpath ", root.path()));
    char link[PATH_MAX];
    std::string proc = str_cat("/proc/self/fd/", fd);
    ssize_t length = ::readlink(proc.c_str(), link, sizeof link - 1);
    if (length < 0) return fail_errno(str_cat("readlink ", proc));
    std::string_view path(link, static_cast<size_t>(length));
    std::string_view prefix(resolved_root);
    if (path == prefix) return std::string();
    if (!path.starts_with(prefix) || path.size() <= prefix.size() || path[prefix.size()] != '/')
        return fail(str_cat("resolved path ", path, " is outside ", root.path()));
    return std::string(path.substr(prefix.size() + 1));
}

}  // namespace kiln
