#pragma once
// Shared by the overlay tests: layer directories extracted from real tars, overlay mounts that go away with
// the test, and the reason to skip where this machine cannot mount overlays.

#include <archive_entry.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>

#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "layers/overlay_mount.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln::test {

// Runs `body` in a child that has dropped to uid/gid 65534 (nobody); its exit code, or -2 if it died.
inline int as_nobody(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(77);
        // Changing ids made the process undumpable, which leaves its /proc files (uid_map) to root.
        ::prctl(PR_SET_DUMPABLE, 1);
        ::_exit(body());
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -2;
    return WEXITSTATUS(status);
}

// Empty when overlays can be mounted with a store in `store`, else why not (for GTEST_SKIP).
inline std::string overlay_unavailable(const std::string& store) {
    auto probed = probe_overlay(store);
    return probed ? std::string() : probed.error().message();
}

// Three layers of a small image: a base, then deletions, an opaque directory and replacements on top.
inline TestTar base_layer() {
    TestTar tar;
    for (const char* dir : {"etc", "usr", "usr/lib", "usr/share", "usr/share/doc", "usr/share/doc/a", "var",
                            "var/log", "opt", "opt/sub", "srv"})
        tar.dir(dir);
    tar.dir("tmp", 01777);
    tar.file("etc/hostname", "vm\n");
    tar.file("etc/issue", "Debian\n");
    tar.file("etc/motd", "motd\n");
    tar.file("etc/shadow", "root:*:\n", 0640, 0, 42);
    tar.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    tar.file("etc/group", "root:x:0:\n");
    tar.file("etc/owned", "owned\n");
    tar.file("etc/services", "ssh 22/tcp\n");
    tar.add(
        {.name = "etc/noted", .type = AE_IFREG, .content = "noted\n", .xattrs = {{"user.kiln.note", "v1"}}});
    tar.dir("usr/lib/old");
    tar.file("usr/lib/old/lib.so", "old\n");
    tar.file("usr/share/doc/a/README", "readme\n");
    tar.file("usr/share/doc/b.txt", "b\n");
    tar.file("var/log/old.log", "old\n");
    tar.file("opt/tool", "#!/bin/sh\n", 0755);
    tar.file("opt/sub/data", "data\n");
    tar.file("usr/lib/libc.so.6", "ELF\n", 0755);
    tar.hardlink("usr/lib/libc.so", "usr/lib/libc.so.6");
    tar.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
    return tar;
}

inline TestTar second_layer() {
    TestTar tar;
    for (const char* dir : {"etc", "var", "var/log", "usr", "usr/share", "usr/share/doc"}) tar.dir(dir);
    tar.file("etc/.wh.issue", "");
    tar.file("var/log/.wh..wh..opq", "");
    tar.file("var/log/new.log", "new\n");
    tar.file("etc/motd", "motd v2\n");
    tar.file("etc/extra", "extra\n", 0600, 1000, 1000);
    tar.file("usr/share/doc/.wh.b.txt", "");
    return tar;
}

inline TestTar third_layer() {
    TestTar tar;
    for (const char* dir : {"etc", "opt", "usr", "usr/share", "usr/share/doc", "usr/share/doc/a"})
        tar.dir(dir);
    tar.file("opt/.wh.sub", "");
    tar.file("usr/share/doc/a/CHANGES", "changes\n");
    tar.file("usr/share/doc/b.txt", "b again\n");
    tar.file("etc/hostname", "vm3\n");
    return tar;
}

// Applies `tar` to the directory `dir` (which must exist) in `format`.
inline Result<ExtractStats> extract_tar(const std::string& dir, const TestTar& tar, WhiteoutFormat format) {
    KILN_ASSIGN(RootFs root, RootFs::open(dir));
    StringReader reader(tar.bytes());
    ExtractOptions options;
    options.layer_name = "test layer in " + dir;
    options.whiteout_format = format;
    // A single-id user namespace cannot chown to the layers' other ids.
    options.ownership_failure = OwnershipFailure::warn_once;
    return apply_layer(root, reader, options);
}

}  // namespace kiln::test
