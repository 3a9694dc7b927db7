#include "builder/sources/copy_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "builder/sources/context.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/file_metadata.hpp"

namespace kiln {
namespace {

// The owner a source is meant to have: a stage built in a single-id user namespace holds the owners it could
// not apply in the override xattr, so COPY --from keeps them as it would keep real ones.
void use_intended_owner(int fd, const char* name, struct stat& st) {
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return;
    if (auto recorded = read_override_stat(fd, name)) {
        st.st_uid = recorded->uid;
        st.st_gid = recorded->gid;
    }
}

// The parent of a cleaned relative path ("" for a top-level name).
std::string parent_path_of(std::string_view cleaned) {
    size_t slash = cleaned.rfind('/');
    return slash == std::string_view::npos ? std::string() : std::string(cleaned.substr(0, slash));
}

class CopyJob {
public:
    // --exclude patterns are relative to `exclude_base` in `from`.
    CopyJob(const RootFs& from, const RootFs& to, const CopyOptions& options, std::vector<std::string>& written,
            std::string exclude_base)
        : m_from(from), m_to(to), m_options(options), m_written(written), m_exclude_base(std::move(exclude_base)) {}

    // How a directory that copy_top() creates for a directory source is made.
    enum class NewDirectory { plain, like_source };

    Status copy_top(std::string_view source, std::string_view target, NewDirectory new_directory);
    Status copy_below_pivot(std::string_view pivot, std::string_view relative, std::string_view target_dir);

private:
    Status copy_children(int src_dir, const std::string& src_rel, int dst_dir, const std::string& dst_rel);
    Status copy_entry(int src_parent, const std::string& name, const struct stat& st, const std::string& src_rel,
                      int dst_parent, const std::string& dst_name, const std::string& dst_rel);
    Status create_leaf(int src_fd, const struct stat& st, int dst_parent, const std::string& dst_name,
                       const std::string& dst_rel, const std::string& link_target);
    Status apply_metadata(int dst_parent, const std::string& name, const struct stat& st, const std::string& dst_rel);
    Status remove_existing(int dst_parent, const std::string& name, const std::string& dst_rel);
    bool excluded(const std::string& src_rel, bool is_dir, bool& descend_anyway) const;
    // lstat's ids, or those the source records as its intended owner; only asked for without --chown.
    void source_owner(int fd, const char* name, struct stat& st) const {
        if (!m_options.owner) use_intended_owner(fd, name, st);
    }

    const RootFs& m_from;
    const RootFs& m_to;
    const CopyOptions& m_options;
    std::vector<std::string>& m_written;
    std::string m_exclude_base;
    std::map<std::pair<dev_t, ino_t>, std::string> m_first_link;  // first destination of each multiply-linked inode
    bool m_warned_devices = false;
    bool m_warned_ownership = false;
};

bool CopyJob::excluded(const std::string& src_rel, bool is_dir, bool& descend_anyway) const {
    descend_anyway = false;
    if (m_options.ignore && !src_rel.empty() && m_options.ignore->matches(src_rel)) {
        descend_anyway = is_dir && m_options.ignore->must_descend(src_rel);
        return true;
    }
    if (m_options.exclude && path_is_under(src_rel, m_exclude_base)) {
        std::string relative = m_exclude_base.empty() ? src_rel : src_rel.substr(m_exclude_base.size() + 1);
        if (m_options.exclude->matches(relative)) {
            descend_anyway = is_dir && m_options.exclude->must_descend(relative);
            return true;
        }
    }
    return false;
}

Status CopyJob::remove_existing(int dst_parent, const std::string& name, const std::string& dst_rel) {
    struct stat existing;
    if (::fstatat(dst_parent, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {};
        return fail_errno(str_cat("lstat ", m_to.display(dst_rel)));
    }
    if (S_ISDIR(existing.st_mode)) {
        UniqueFd dir(::openat(dst_parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) return fail_errno(str_cat("open ", m_to.display(dst_rel)));
        KILN_TRY(remove_tree_contents(dir.get(), m_to.display(dst_rel)));
        if (::unlinkat(dst_parent, name.c_str(), AT_REMOVEDIR) != 0) return fail_errno(str_cat("rmdir ", m_to.display(dst_rel)));
        return {};
    }
    if (::unlinkat(dst_parent, name.c_str(), 0) != 0) return fail_errno(str_cat("unlink ", m_to.display(dst_rel)));
    return {};
}

Status CopyJob::apply_metadata(int dst_parent, const std::string& name, const struct stat& st,
                               const std::string& dst_rel) {
    uid_t uid = m_options.owner ? m_options.owner->uid : st.st_uid;
    gid_t gid = m_options.owner ? m_options.owner->gid : st.st_gid;
    mode_t mode = m_options.mode ? m_options.mode->apply(st.st_mode) : (st.st_mode & 07777);
    // Ids a single-id user namespace cannot hold are recorded for the layer writer instead; symlinks and
    // special files cannot carry the record, and keep the builder's ids.
    KILN_ASSIGN(OwnershipKept kept, change_owner(dst_parent, name.c_str(), uid, gid,
                                                 (st.st_mode & S_IFMT) | mode, m_to.display(dst_rel)));
    if (kept == OwnershipKept::lost && !m_warned_ownership) {
        m_warned_ownership = true;
        log_warn("the owner ", uid, ":", gid, " cannot be applied or recorded here and is lost, e.g. for ",
                 m_to.display(dst_rel));
    }
    // After chown, which clears set-id bits.
    if (!S_ISLNK(st.st_mode) && ::fchmodat(dst_parent, name.c_str(), mode, 0) != 0)
        return fail_errno(str_cat("chmod ", m_to.display(dst_rel)));
    timespec times[2] = {st.st_mtim, st.st_mtim};
    if (::utimensat(dst_parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno(str_cat("set times of ", m_to.display(dst_rel)));
    return {};
}

Status CopyJob::create_leaf(int src_fd, const struct stat& st, int dst_parent, const std::string& dst_name,
                            const std::string& dst_rel, const std::string& link_target) {
    KILN_TRY(remove_existing(dst_parent, dst_name, dst_rel));
    if (S_ISREG(st.st_mode)) {
        if (st.st_nlink > 1) {
            auto key = std::pair{st.st_dev, st.st_ino};
            if (auto first = m_first_link.find(key); first != m_first_link.end()) {
                KILN_ASSIGN(auto first_parent, m_to.open_parent(first->second));
                if (::linkat(first_parent.first.get(), first_parent.second.c_str(), dst_parent, dst_name.c_str(), 0) != 0)
                    return fail_errno(str_cat("link ", m_to.display(dst_rel), " to ", first->second));
                m_written.push_back(dst_rel);
                return {};
            }
            m_first_link.emplace(key, dst_rel);
        }
        // Reopen the O_PATH descriptor for reading; it names exactly the entry that was checked.
        std::string proc = str_cat("/proc/self/fd/", src_fd);
        UniqueFd in(::open(proc.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) return fail_errno(str_cat("open source of ", m_to.display(dst_rel)));
        UniqueFd out(::openat(dst_parent, dst_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out) return fail_errno(str_cat("create ", m_to.display(dst_rel)));
        KILN_TRY(copy_file_data(in.get(), out.get(), m_to.display(dst_rel)));
    } else if (S_ISLNK(st.st_mode)) {
        if (::symlinkat(link_target.c_str(), dst_parent, dst_name.c_str()) != 0)
            return fail_errno(str_cat("symlink ", m_to.display(dst_rel)));
    } else if (S_ISFIFO(st.st_mode)) {
        if (::mknodat(dst_parent, dst_name.c_str(), S_IFIFO | 0600, 0) != 0)
            return fail_errno(str_cat("mkfifo ", m_to.display(dst_rel)));
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        if (::mknodat(dst_parent, dst_name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
            if (errno != EPERM) return fail_errno(str_cat("mknod ", m_to.display(dst_rel)));
            if (!m_warned_devices) log_warn("device nodes cannot be created here and are left out, e.g. ", dst_rel);
            m_warned_devices = true;
            return {};
        }
    } else {
        return {};  // sockets are not copied, as Docker does not
    }
    KILN_TRY(apply_metadata(dst_parent, dst_name, st, dst_rel));
    m_written.push_back(dst_rel);
    return {};
}

Status CopyJob::copy_entry(int src_parent, const std::string& name, const struct stat& st, const std::string& src_rel,
                           int dst_parent, const std::string& dst_name, const std::string& dst_rel) {
    if (S_ISDIR(st.st_mode)) {
        UniqueFd src_dir(::openat(src_parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!src_dir) return fail_errno(str_cat("open ", m_from.display(src_rel)));
        struct stat existing;
        bool exists = ::fstatat(dst_parent, dst_name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
        bool created = false;
        if (!exists || !S_ISDIR(existing.st_mode)) {
            KILN_TRY(remove_existing(dst_parent, dst_name, dst_rel));
            if (::mkdirat(dst_parent, dst_name.c_str(), 0700) != 0) return fail_errno(str_cat("mkdir ", m_to.display(dst_rel)));
            created = true;
        }
        UniqueFd dst_dir(::openat(dst_parent, dst_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dst_dir) return fail_errno(str_cat("open ", m_to.display(dst_rel)));
        KILN_TRY(copy_children(src_dir.get(), src_rel, dst_dir.get(), dst_rel));
        // Existing directories keep their owner and mode, as Docker leaves them; new ones take the source's.
        if (created) {
            KILN_TRY(apply_metadata(dst_parent, dst_name, st, dst_rel));
            m_written.push_back(dst_rel);
        }
        return {};
    }
    std::string link_target;
    if (S_ISLNK(st.st_mode)) {
        KILN_ASSIGN(link_target, read_link_at(src_parent, name, m_from.display(src_rel)));
    }
    UniqueFd src(::openat(src_parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!src) return fail_errno(str_cat("open ", m_from.display(src_rel)));
    return create_leaf(src.get(), st, dst_parent, dst_name, dst_rel, link_target);
}

Status CopyJob::copy_children(int src_dir, const std::string& src_rel, int dst_dir, const std::string& dst_rel) {
    KILN_ASSIGN(std::vector<std::string> names, list_directory(src_dir, m_from.display(src_rel)));
    for (const std::string& name : names) {
        struct stat st;
        std::string child_src = join_path(src_rel, name);
        if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(str_cat("lstat ", m_from.display(child_src)));
        source_owner(src_dir, name.c_str(), st);
        bool descend_anyway = false;
        if (excluded(child_src, S_ISDIR(st.st_mode), descend_anyway) && !descend_anyway) continue;
        KILN_TRY(copy_entry(src_dir, name, st, child_src, dst_dir, name, join_path(dst_rel, name)));
    }
    return {};
}

Status CopyJob::copy_top(std::string_view source, std::string_view target, NewDirectory new_directory) {
    std::string src_rel = clean_path(source);
    KILN_ASSIGN(UniqueFd src, m_from.open(src_rel, O_PATH));
    struct stat st;
    if (::fstat(src.get(), &st) != 0) return fail_errno(str_cat("stat ", m_from.display(src_rel)));
    source_owner(src.get(), nullptr, st);
    CopyOwner parents = m_options.owner.value_or(CopyOwner{});
    std::string dst = clean_path(target);

    if (S_ISDIR(st.st_mode)) {
        bool target_existed = dst.empty() || m_to.open(dst, O_PATH | O_DIRECTORY).has_value();
        KILN_ASSIGN(UniqueFd dst_dir, m_to.make_directories(dst, 0755, parents.uid, parents.gid));
        UniqueFd dst_listing(::openat(dst_dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dst_listing) return fail_errno(str_cat("open ", m_to.display(dst)));
        KILN_ASSIGN(std::string dst_rel, path_in_root(m_to, dst_listing.get()));
        UniqueFd src_dir(::openat(src.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!src_dir) return fail_errno(str_cat("open ", m_from.display(src_rel)));
        KILN_TRY(copy_children(src_dir.get(), src_rel, dst_listing.get(), dst_rel));
        if (dst_rel.empty()) return {};
        if (!target_existed && new_directory == NewDirectory::like_source) {
            KILN_ASSIGN(auto parent, m_to.open_parent(dst_rel));
            KILN_TRY(apply_metadata(parent.first.get(), parent.second, st, dst_rel));
        }
        m_written.push_back(dst_rel);
        return {};
    }
    if (dst.empty()) return fail(str_cat("cannot copy file ", src_rel, " to the root directory itself"));
    KILN_TRY(m_to.make_directories(parent_path_of(dst), 0755, parents.uid, parents.gid));
    KILN_ASSIGN(auto parent, m_to.open_parent(dst));
    KILN_ASSIGN(std::string parent_rel, path_in_root(m_to, parent.first.get()));
    return create_leaf(src.get(), st, parent.first.get(), parent.second, join_path(parent_rel, parent.second), "");
}

Status CopyJob::copy_below_pivot(std::string_view pivot, std::string_view relative, std::string_view target_dir) {
    std::string pivot_rel = clean_path(pivot);
    std::string rel = clean_path(relative);
    if (rel.empty()) return copy_top(pivot_rel, target_dir, NewDirectory::plain);
    CopyOwner parents = m_options.owner.value_or(CopyOwner{});
    KILN_ASSIGN(UniqueFd base_fd, m_to.make_directories(target_dir, 0755, parents.uid, parents.gid));
    KILN_ASSIGN(std::string base, path_in_root(m_to, base_fd.get()));
    // The directories between the pivot and the source are recreated like their sources.
    std::vector<std::string> components = split(rel, '/');
    std::string prefix;
    for (size_t i = 0; i + 1 < components.size(); ++i) {
        prefix = join_path(prefix, components[i]);
        std::string dst_path = join_path(base, prefix);
        if (m_to.open(dst_path, O_PATH | O_DIRECTORY)) continue;
        std::string src_path = join_path(pivot_rel, prefix);
        KILN_ASSIGN(UniqueFd src_dir, m_from.open(src_path, O_PATH | O_DIRECTORY));
        struct stat st;
        if (::fstat(src_dir.get(), &st) != 0) return fail_errno(str_cat("stat ", m_from.display(src_path)));
        source_owner(src_dir.get(), nullptr, st);
        KILN_ASSIGN(auto parent, m_to.open_parent(dst_path));
        KILN_ASSIGN(std::string parent_rel, path_in_root(m_to, parent.first.get()));
        std::string created = join_path(parent_rel, parent.second);
        if (::mkdirat(parent.first.get(), parent.second.c_str(), 0700) != 0)
            return fail_errno(str_cat("mkdir ", m_to.display(created)));
        KILN_TRY(apply_metadata(parent.first.get(), parent.second, st, created));
        m_written.push_back(created);
    }
    return copy_top(join_path(pivot_rel, rel), join_path(base, rel), NewDirectory::like_source);
}

}  // namespace

Status copy_path(const RootFs& from, std::string_view source, const RootFs& to, std::string_view target,
                 const CopyOptions& options, std::vector<std::string>& written) {
    CopyJob job(from, to, options, written, clean_path(source));
    return job.copy_top(source, target, CopyJob::NewDirectory::plain);
}

Status copy_path_with_parents(const RootFs& from, std::string_view pivot, std::string_view relative,
                              const RootFs& to, std::string_view target_dir, const CopyOptions& options,
                              std::vector<std::string>& written) {
    CopyJob job(from, to, options, written, clean_path(pivot));
    return job.copy_below_pivot(pivot, relative, target_dir);
}

Status write_inline_file(const RootFs& to, std::string_view target, std::string_view content,
                         const CopyOptions& options, std::vector<std::string>& written) {
    std::string dst = clean_path(target);
    if (dst.empty()) return fail("cannot write a heredoc file to the root directory itself");
    CopyOwner owner = options.owner.value_or(CopyOwner{});
    KILN_TRY(to.make_directories(parent_path_of(dst), 0755, owner.uid, owner.gid));
    KILN_ASSIGN(auto parent, to.open_parent(dst));
    KILN_ASSIGN(std::string parent_rel, path_in_root(to, parent.first.get()));
    std::string rel = join_path(parent_rel, parent.second);
    ::unlinkat(parent.first.get(), parent.second.c_str(), 0);
    UniqueFd out(::openat(parent.first.get(), parent.second.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600));
    if (!out) return fail_errno(str_cat("create ", to.display(rel)));
    FdWriter writer(out.get(), to.display(rel));
    KILN_TRY(writer.write(content));
    mode_t mode = options.mode ? options.mode->apply(S_IFREG | 0644) : 0644;
    KILN_TRY(change_owner(out.get(), nullptr, owner.uid, owner.gid, S_IFREG | mode, to.display(rel)));
    if (::fchmod(out.get(), mode) != 0) return fail_errno(str_cat("chmod ", to.display(rel)));
    written.push_back(rel);
    return {};
}

}  // namespace kiln
