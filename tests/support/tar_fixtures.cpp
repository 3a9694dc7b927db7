#include "tests/support/tar_fixtures.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln::test {

TestTar& TestTar::add(Entry entry) {
    m_entries.push_back(std::move(entry));
    return *this;
}

TestTar& TestTar::file(std::string name, std::string content, unsigned mode, std::int64_t uid,
                       std::int64_t gid) {
    return add({.name = std::move(name),
                .type = AE_IFREG,
                .content = std::move(content),
                .mode = mode,
                .uid = uid,
                .gid = gid});
}

TestTar& TestTar::dir(std::string name, unsigned mode, std::int64_t uid, std::int64_t gid) {
    return add({.name = std::move(name), .type = AE_IFDIR, .mode = mode, .uid = uid, .gid = gid});
}

TestTar& TestTar::symlink(std::string name, std::string target) {
    return add({.name = std::move(name), .type = AE_IFLNK, .link = std::move(target), .mode = 0777});
}

TestTar& TestTar::hardlink(std::string name, std::string target) {
    return add({.name = std::move(name), .type = AE_IFREG, .hardlink = std::move(target)});
}

namespace {
la_ssize_t append_to_string(archive*, void* out, const void* buffer, size_t size) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), size);
    return static_cast<la_ssize_t>(size);
}
}  // namespace

std::string TestTar::bytes() const {
    std::string out;
    std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
    archive_write_set_format_pax_restricted(a.get());
    archive_write_open2(a.get(), &out, nullptr, append_to_string, nullptr, nullptr);
    for (const Entry& entry : m_entries) {
        std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                        archive_entry_free);
        archive_entry_copy_pathname(e.get(), entry.name.c_str());
        archive_entry_set_filetype(e.get(), entry.type ? entry.type : AE_IFREG);
        archive_entry_set_perm(e.get(), entry.mode);
        archive_entry_set_uid(e.get(), entry.uid);
        archive_entry_set_gid(e.get(), entry.gid);
        archive_entry_set_mtime(e.get(), entry.mtime, 0);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(entry.content.size()));
        if (!entry.link.empty()) archive_entry_copy_symlink(e.get(), entry.link.c_str());
        if (!entry.hardlink.empty()) {
            archive_entry_copy_hardlink(e.get(), entry.hardlink.c_str());
            archive_entry_set_size(e.get(), 0);
        }
        archive_entry_set_rdevmajor(e.get(), entry.rdev_major);
        archive_entry_set_rdevminor(e.get(), entry.rdev_minor);
        for (const auto& [name, value] : entry.xattrs)
            archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
        if (archive_write_header(a.get(), e.get()) < ARCHIVE_WARN)
            throw std::runtime_error(str_cat("test tar: ", archive_error_string(a.get())));
        if (!entry.content.empty() && entry.hardlink.empty())
            archive_write_data(a.get(), entry.content.data(), entry.content.size());
    }
    archive_write_close(a.get());
    return out;
}

std::vector<std::string> describe_tree(const std::string& root) {
    namespace fs = std::filesystem;
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        std::string path = it->path().string();
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("lstat " + path);
        std::ostringstream line;
        line << path.substr(root.size() + 1) << " " << std::oct << (st.st_mode & S_IFMT) << " "
             << (st.st_mode & 07777) << std::dec << " " << st.st_uid << ":" << st.st_gid << " "
             << st.st_mtim.tv_sec;
        if (S_ISREG(st.st_mode))
            line << " " << st.st_size << " " << sha256_hex(read_text(path)).substr(0, 16);
        if (S_ISLNK(st.st_mode)) line << " -> " << fs::read_symlink(it->path()).string();
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) line << " rdev " << st.st_rdev;
        lines.push_back(line.str());
    }
    std::sort(lines.begin(), lines.end());
    return lines;
}

void write_text(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("write " + path);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("read " + path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool exists_nofollow(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

LogCapture::LogCapture() : m_messages(std::make_shared<std::vector<std::pair<LogLevel, std::string>>>()) {
    auto messages = m_messages;
    set_log_sink([messages](LogLevel level, std::string_view message) {
        messages->emplace_back(level, std::string(message));
    });
}

LogCapture::~LogCapture() {
    set_log_sink(nullptr);
}

size_t LogCapture::count(LogLevel level) const {
    return static_cast<size_t>(
        std::count_if(m_messages->begin(), m_messages->end(),
                      [level](const auto& message) { return message.first == level; }));
}

std::vector<std::string> LogCapture::lines_with(std::string_view part) const {
    std::vector<std::string> lines;
    for (const auto& [level, message] : *m_messages)
        if (message.find(part) != std::string::npos) lines.push_back(message);
    return lines;
}

std::string LogCapture::text() const {
    std::string text;
    for (const auto& [level, message] : *m_messages) text += message + "\n";
    return text;
}

bool running_as_root() {
    return ::geteuid() == 0;
}

}  // namespace kiln::test
