#include "tests/builder/sandbox/busybox_rootfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {

Status build_busybox_rootfs(const std::string& dir) {
    static const char* const k_applets[] = {"sh",       "true",  "false", "cat",  "echo", "touch", "chown",
                                            "sleep",    "env",   "pwd",   "test", "kill", "stat",  "ls",
                                            "id",       "mkdir", "rm",    "ps",   "grep", "head",  "wc",
                                            "hostname", "ip",    "cut",   "tr",   "tail"};
    KILN_TRY(make_directories(dir + "/bin"));
    KILN_ASSIGN(std::string busybox, read_file(k_host_busybox));
    KILN_TRY(write_file_atomic(dir + "/bin/busybox", busybox, 0755));
    for (const char* applet : k_applets) {
        std::string link = str_cat(dir, "/bin/", applet);
        if (::symlink("busybox", link.c_str()) != 0) return fail_errno(str_cat("symlink ", link));
    }
    std::string tmp = dir + "/tmp";
    if (::mkdir(tmp.c_str(), 01777) != 0 || ::chmod(tmp.c_str(), 01777) != 0)
        return fail_errno(str_cat("mkdir ", tmp));
    return {};
}

}  // namespace kiln
