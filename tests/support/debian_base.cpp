#include "tests/support/debian_base.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/support/test_image.hpp"

namespace kiln::test {
namespace {

std::string cache_directory() {
    const char* configured = std::getenv("KILN_TEST_CACHE");
    return configured && *configured ? configured : "/var/cache/kiln-tests";
}

Status run_tool(const std::vector<std::string>& argv, std::chrono::minutes timeout) {
    KILN_ASSIGN(ProcessResult result, run_process(argv, {.timeout = timeout}));
    if (result.exit_code != 0) {
        std::string output = result.stdout_bytes + result.stderr_bytes;
        if (output.size() > 2000) output = "…" + output.substr(output.size() - 2000);
        return fail(str_cat(argv[0], " exited with ", result.exit_code, ": ", output));
    }
    return {};
}

}  // namespace

Result<std::string> configured_debian_mirror() {
    if (auto sources = read_file("/etc/apt/sources.list.d/debian.sources")) {
        for (const std::string& line : split(*sources, '\n')) {
            if (!line.starts_with("URIs:")) continue;
            for (const std::string& uri : split(std::string(trim(line.substr(5))), ' '))
                if (!uri.empty() && uri.find("security") == std::string::npos) return uri;
        }
    }
    if (auto list = read_file("/etc/apt/sources.list")) {
        for (const std::string& line : split(*list, '\n')) {
            std::vector<std::string> words = split(std::string(trim(line)), ' ');
            if (words.empty() || words[0] != "deb") continue;
            for (size_t i = 1; i < words.size(); ++i)
                if (words[i].find("://") != std::string::npos && words[i].find("security") == std::string::npos)
                    return words[i];
        }
    }
    return fail("no Debian mirror is configured (/etc/apt/sources.list.d/debian.sources, /etc/apt/sources.list)");
}

Result<std::string> debian_base_layout() {
    if (::geteuid() != 0) return fail("making the Debian base needs root (debootstrap)");
    if (!path_exists("/usr/sbin/debootstrap")) return fail("debootstrap is not installed (scripts/setup installs it)");
    std::string directory = cache_directory() + "/debian-bookworm-minbase";
    KILN_TRY(make_directories(directory, 0700));
    std::string layout = directory + "/layout";
    // Held until this returns: a concurrent test process waits, then finds the layout made.
    UniqueFd lock(::open((directory + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX) != 0) return fail_errno(str_cat("lock ", directory, "/lock"));
    if (path_exists(layout + "/index.json")) return layout;

    KILN_ASSIGN(std::string mirror, configured_debian_mirror());
    KILN_ASSIGN(TempDir work, TempDir::create(directory, "making-"));
    std::string rootfs = work.path() + "/rootfs";
    KILN_TRY(with_context(run_tool({"/usr/sbin/debootstrap", "--variant=minbase", "bookworm", rootfs, mirror},
                                   std::chrono::minutes(20)),
                          str_cat("debootstrap from ", mirror)));
    // Without device nodes, which a user namespace cannot make: a container gets its own /dev.
    std::string tar = work.path() + "/rootfs.tar";
    KILN_TRY(run_tool({"tar", "--numeric-owner", "--xattrs", "--exclude=./dev/*", "-C", rootfs, "-cf", tar, "."},
                      std::chrono::minutes(10)));
    KILN_ASSIGN(std::string bytes, read_file(tar, size_t(2) << 30));
    std::string made = work.path() + "/layout";
    KILN_ASSIGN(TestImage image, write_test_image(made, "bookworm", {bytes}));
    (void)image;
    if (::rename(made.c_str(), layout.c_str()) != 0) return fail_errno(str_cat("rename ", made, " to ", layout));
    return layout;
}

}  // namespace kiln::test
