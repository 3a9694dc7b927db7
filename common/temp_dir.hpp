#pragma once
// Temporary directories owned by the build, and removal of trees that never follows a symlink out.

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace kiln {

// Removes `path` and everything below it, working relative to directory fds so that a symlink inside the tree
// (an image's, say) can never lead the removal outside it. Directories without write or search permission are
// made accessible first. A missing path is not an error. With `one_file_system`, a directory on another file
// system than `path` (a mount point) is not descended into, and the removal fails naming it. `last`, when given,
// names an entry of `path` removed after every other (a lock that says the removal is under way).
Status remove_tree(const std::string& path, bool one_file_system = false, std::string_view last = {});

// Removes everything inside the directory `dir_fd`, leaving the directory itself.
Status remove_tree_contents(int dir_fd, const std::string& name_for_errors);

// A fresh directory (mkdtemp) removed with everything in it when the object is destroyed, unless released.
class TempDir {
public:
    // Creates `<parent>/<prefix>XXXXXX`.
    static Result<TempDir> create(const std::string& parent, const std::string& prefix);
    TempDir() = default;
    TempDir(TempDir&& other) noexcept;
    TempDir& operator=(TempDir&& other) noexcept;
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();

    const std::string& path() const { return m_path; }
    // Keeps the directory on destruction; returns its path.
    std::string release();

private:
    explicit TempDir(std::string path) : m_path(std::move(path)) {}
    std::string m_path;
};

// The directory for temporary files: $TMPDIR, else /var/tmp.
std::string default_temp_parent();

}  // namespace kiln
