#pragma once
// .dockerignore: which files of the build context are left out. Docker's rules: '#' comment lines, blank lines
// skipped, lines trimmed, patterns cleaned like Go's filepath.Clean with a leading "/" dropped, "!" exceptions
// where the last matching pattern wins, "**" for any number of directories, filepath.Match syntax otherwise
// (* ? [a-z] [^a] \x), and a pattern that matches a directory excludes everything below it.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::dockerfile {

// One pattern line as Docker reads it.
struct IgnorePattern {
    std::string pattern;  // cleaned, without the leading "!"
    bool exception = false;
    int line = 0;
};

// Decides which context paths a .dockerignore excludes.
class IgnoreMatcher {
public:
    IgnoreMatcher();
    ~IgnoreMatcher();
    IgnoreMatcher(IgnoreMatcher&&) noexcept;
    IgnoreMatcher& operator=(IgnoreMatcher&&) noexcept;

    // Parses the text of a .dockerignore. A malformed pattern ("[a-", "!" alone) is an error naming its line.
    static Result<IgnoreMatcher> parse(std::string_view text, std::string_view file_name = ".dockerignore");
    // Builds a matcher from patterns already read (each may start with "!").
    static Result<IgnoreMatcher> from_patterns(const std::vector<std::string>& patterns);

    // True when `relative_path` ("dir/file", relative to the context root, '/'-separated) is excluded.
    bool matches(std::string_view relative_path) const;
    // For an excluded directory: true when an exception pattern could re-include something below it, so a
    // context walker must still descend into it (and test each entry with matches()).
    bool must_descend(std::string_view relative_dir) const;

    bool has_exceptions() const;
    const std::vector<IgnorePattern>& patterns() const { return m_patterns; }

private:
    struct Compiled;
    std::vector<IgnorePattern> m_patterns;
    std::vector<std::unique_ptr<Compiled>> m_compiled;
};

// Go's filepath.Clean for '/'-separated paths: "a//b/./c/.." → "a/b", "" → ".".
std::string clean_path(std::string_view path);

}  // namespace kiln::dockerfile
