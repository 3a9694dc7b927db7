#include "builder/sources/context.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

bool component_has_wildcard(std::string_view component) {
    for (size_t i = 0; i < component.size(); ++i) {
        if (component[i] == '\\') {
            ++i;
        } else if (component[i] == '*' || component[i] == '?' || component[i] == '[') {
            return true;
        }
    }
    return false;
}

// One component of a source pattern, matched by filepath.Match rules. IgnoreMatcher has that syntax, but
// reads "**" as "any directories" and a leading "!" as an exception; within one name, "**" means "*" and
// "!" is itself.
class ComponentPattern {
public:
    static Result<ComponentPattern> compile(std::string_view component) {
        std::string prepared = component.starts_with('!') ? "\\" : "";
        bool after_star = false;
        for (size_t i = 0; i < component.size(); ++i) {
            char c = component[i];
            if (c == '*' && after_star) continue;
            after_star = c == '*';
            prepared += c;
            if (c == '\\' && i + 1 < component.size()) prepared += component[++i];
        }
        KILN_ASSIGN(dockerfile::IgnoreMatcher matcher,
                    with_context(dockerfile::IgnoreMatcher::from_patterns({prepared}),
                                 str_cat("the source pattern \"", component, "\"")));
        return ComponentPattern(std::move(matcher));
    }
    bool matches(std::string_view name) const { return m_matcher.matches(name); }

private:
    explicit ComponentPattern(dockerfile::IgnoreMatcher matcher) : m_matcher(std::move(matcher)) {}
    dockerfile::IgnoreMatcher m_matcher;
};

std::vector<std::string> components_of(const std::string& cleaned) {
    return cleaned.empty() ? std::vector<std::string>() : split(cleaned, '/');
}

size_t first_wildcard(const std::vector<std::string>& components) {
    for (size_t i = 0; i < components.size(); ++i)
        if (component_has_wildcard(components[i])) return i;
    return components.size();
}

bool kept_by(const dockerfile::IgnoreMatcher* ignore, const std::string& path) {
    return !ignore || path.empty() || !ignore->matches(path) || ignore->must_descend(path);
}

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
    std::vector<std::string> components = components_of(cleaned);
    size_t wild = first_wildcard(components);
    std::string base =
        join(std::vector<std::string>(components.begin(), components.begin() + static_cast<long>(wild)), "/");
    auto not_found = [&] {
        return fail(str_cat("file not found in build context or excluded by .dockerignore: ",
                            base.empty() ? "." : base));
    };
    if (!kept_by(ignore, base) || !root.open(base, O_PATH)) return not_found();
    if (wild == components.size()) return std::vector<std::string>{cleaned};

    // Below the base, BuildKit walks the tree: symlinks are matched by name but never searched.
    std::vector<std::string> current = {base};
    for (size_t level = wild; level < components.size(); ++level) {
        KILN_ASSIGN(ComponentPattern component, ComponentPattern::compile(components[level]));
        bool last = level + 1 == components.size();
        std::vector<std::string> next;
        for (const std::string& dir : current) {
            auto dir_fd = root.open(dir, O_RDONLY | O_DIRECTORY);
            if (!dir_fd) {
                if (dir == base) return not_found();
                continue;
            }
            KILN_ASSIGN(std::vector<std::string> names, list_directory(dir_fd->get(), root.display(dir)));
            for (const std::string& name : names) {
                if (!component.matches(name)) continue;
                struct stat st;
                if (!last && (::fstatat(dir_fd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                              !S_ISDIR(st.st_mode)))
                    continue;
                next.push_back(join_path(dir, name));
            }
        }
        current = std::move(next);
    }
    std::vector<std::string> matches;
    for (const std::string& path : current)
        if (kept_by(ignore, path)) matches.push_back(path);
    std::sort(matches.begin(), matches.end(),
              [](const std::string& a, const std::string& b) { return path_less(a, b); });
    return matches;
}

bool has_wildcards(std::string_view pattern) {
    std::vector<std::string> components = components_of(clean_path(pattern));
    return first_wildcard(components) < components.size();
}

std::string wildcard_base(std::string_view pattern) {
    std::vector<std::string> components = components_of(clean_path(pattern));
    components.resize(first_wildcard(components));
    return join(components, "/");
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
