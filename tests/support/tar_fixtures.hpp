#pragma once
// Helpers for tests that need tar files: tar files built entry by entry with libarchive (hostile names included),
// trees described as text for comparison, and a log sink that records warnings.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"

namespace kiln::test {

// A tar archive built in memory with libarchive's own writer, independent of the code under test.
class TestTar {
public:
    struct Entry {
        std::string name;
        unsigned type = 0;  // AE_IFREG, AE_IFDIR, …; 0 with `hardlink` set for a hardlink
        std::string content;
        std::string link;  // symlink target
        std::string hardlink;
        unsigned mode = 0644;
        std::int64_t uid = 0;
        std::int64_t gid = 0;
        std::int64_t mtime = 1'600'000'000;
        unsigned rdev_major = 0;
        unsigned rdev_minor = 0;
        std::vector<std::pair<std::string, std::string>> xattrs;
    };

    TestTar& add(Entry entry);
    TestTar& file(std::string name, std::string content, unsigned mode = 0644, std::int64_t uid = 0,
                  std::int64_t gid = 0);
    TestTar& dir(std::string name, unsigned mode = 0755, std::int64_t uid = 0, std::int64_t gid = 0);
    TestTar& symlink(std::string name, std::string target);
    TestTar& hardlink(std::string name, std::string target);
    // The whole archive (ustar/pax with the end-of-archive marker).
    std::string bytes() const;

private:
    std::vector<Entry> m_entries;
};

// One line per entry below `root` (sorted): "path type mode uid:gid size mtime content-sha/target". Mtimes
// are whole seconds; directories' sizes are left out.
std::vector<std::string> describe_tree(const std::string& root);

void write_text(const std::string& path, const std::string& content);
std::string read_text(const std::string& path);
bool exists_nofollow(const std::string& path);

// Records every log message while alive; restores the default sink afterwards.
class LogCapture {
public:
    LogCapture();
    ~LogCapture();
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;
    size_t count(LogLevel level) const;
    const std::vector<std::pair<LogLevel, std::string>>& messages() const { return *m_messages; }
    // The messages that contain `part`, in order.
    std::vector<std::string> lines_with(std::string_view part) const;
    bool contains(std::string_view part) const { return !lines_with(part).empty(); }
    // Every message, one per line, for failure output.
    std::string text() const;

private:
    std::shared_ptr<std::vector<std::pair<LogLevel, std::string>>> m_messages;
};

bool running_as_root();

}  // namespace kiln::test
