#include "builder/cache/tree_digest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "builder/sources/context.hpp"
#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

class TreeDigester {
public:
    TreeDigester(const RootFs& root, const dockerfile::IgnoreMatcher* ignore, bool owners, const std::string& prefix,
                 std::map<std::string, std::string>& digests)
        : m_root(root), m_ignore(ignore), m_owners(owners), m_prefix(prefix), m_digests(digests) {}

    Status top(std::string_view path) {
        std::string cleaned = clean_path(path);
        KILN_ASSIGN(UniqueFd fd, m_root.open(cleaned, O_RDONLY | O_NONBLOCK));
        struct stat st;
        if (::fstat(fd.get(), &st) != 0) return fail_errno(str_cat("stat ", m_root.display(cleaned)));
        // The followed symlink's target is what is read: the digest names the target's path.
        KILN_ASSIGN(std::string where, path_in_root(m_root, fd.get()));
        return entry(fd.get(), st, where, "");
    }

private:
    Status entry(int fd, const struct stat& st, const std::string& rel, const std::string& link_target) {
        Sha256 hash;
        hash.update(str_cat(st.st_mode & S_IFMT, " ", st.st_mode & 07777));
        if (m_owners) hash.update(str_cat(" ", st.st_uid, ":", st.st_gid));
        if (S_ISLNK(st.st_mode)) hash.update(" -> " + link_target);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) hash.update(str_cat(" ", st.st_rdev));
        if (S_ISREG(st.st_mode)) {
            hash.update(" ");
            std::vector<char> buffer(1 << 16);
            while (true) {
                ssize_t n = ::read(fd, buffer.data(), buffer.size());
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno(str_cat("read ", m_root.display(rel)));
                if (n == 0) break;
                hash.update(buffer.data(), static_cast<size_t>(n));
            }
        }
        m_digests[m_prefix + (rel.empty() ? "." : rel)] = hash.finish_hex();
        if (S_ISDIR(st.st_mode)) return children(fd, rel);
        return {};
    }

    Status children(int dir_fd, const std::string& rel) {
        KILN_ASSIGN(std::vector<std::string> names, list_directory(dir_fd, m_root.display(rel)));
        for (const std::string& name : names) {
            std::string child = join_path(rel, name);
            struct stat st;
            if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return fail_errno(str_cat("lstat ", m_root.display(child)));
            bool excluded = m_ignore && m_ignore->matches(child);
            if (excluded && !(S_ISDIR(st.st_mode) && m_ignore->must_descend(child))) continue;
            if (S_ISLNK(st.st_mode)) {
                KILN_ASSIGN(std::string target, read_link_at(dir_fd, name, m_root.display(child)));
                if (!excluded) KILN_TRY(entry(-1, st, child, target));
                continue;
            }
            int flags = (S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : S_ISREG(st.st_mode) ? O_RDONLY : O_PATH) |
                        O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
            UniqueFd fd(::openat(dir_fd, name.c_str(), flags));
            if (!fd) return fail_errno(str_cat("open ", m_root.display(child)));
            if (excluded) {
                KILN_TRY(children(fd.get(), child));  // an exception below an ignored directory
                continue;
            }
            KILN_TRY(entry(fd.get(), st, child, ""));
        }
        return {};
    }

    const RootFs& m_root;
    const dockerfile::IgnoreMatcher* m_ignore;
    bool m_owners;
    const std::string& m_prefix;
    std::map<std::string, std::string>& m_digests;
};

}  // namespace

Status digest_tree(const RootFs& root, std::string_view path, const dockerfile::IgnoreMatcher* ignore, bool owners,
                   const std::string& prefix, std::map<std::string, std::string>& digests) {
    TreeDigester digester(root, ignore, owners, prefix, digests);
    return with_context(digester.top(path), str_cat("reading ", root.display(clean_path(path)), " for the cache key"));
}

}  // namespace kiln
