// Runs as an unprivileged user for nonroot_test.cpp: enters kiln's user namespace as the CLI does, builds a
// busybox rootfs in <work>/rootfs, runs RUN steps in the sandbox and prints what happened, one fact per line:
// "mode <description>", "<step>_exit <code>" (or "<step>_error <message>"), "stat <path> <uid> <gid>".
// With --wait instead of a work directory, it prints "ready" once inside the namespace and waits to be
// killed.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "builder/sandbox/sandbox.hpp"
#include "builder/sandbox/userns.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"
#include "layers/file_metadata.hpp"
#include "tests/builder/sandbox/busybox_rootfs.hpp"

namespace {

void run_step(const kiln::Sandbox& sandbox, const std::string& rootfs, const char* name, const char* script,
              uid_t uid, std::vector<kiln::RunMount> mounts = {}) {
    kiln::RunSpec spec;
    spec.rootfs = rootfs;
    spec.argv = {"sh", "-c", script};
    spec.environment = {"PATH=/bin"};
    spec.uid = uid;
    spec.gid = uid;
    spec.mounts = std::move(mounts);
    auto result = sandbox.run(spec);
    if (result)
        std::printf("%s_exit %d\n", name, *result);
    else
        std::printf("%s_error %s\n", name, result.error().message().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    auto entered = kiln::enter_build_user_namespace(argv, environ);
    if (!entered) {
        std::printf("error %s\n", entered.error().message().c_str());
        return 3;
    }
    if (entered->has_value()) return **entered;
    if (std::string(argv[1]) == "--wait") {
        std::printf("ready\n");
        std::fflush(stdout);
        while (true) ::pause();
    }

    std::string rootfs = std::string(argv[1]) + "/rootfs";
    if (auto made = kiln::make_directories(rootfs); !made) {
        std::printf("error %s\n", made.error().message().c_str());
        return 3;
    }
    if (auto built = kiln::build_busybox_rootfs(rootfs); !built) {
        std::printf("error %s\n", built.error().message().c_str());
        return 3;
    }
    auto sandbox = kiln::Sandbox::detect();
    if (!sandbox) {
        std::printf("error %s\n", sandbox.error().message().c_str());
        return 3;
    }
    std::printf("mode %s\n", sandbox->description().c_str());
    run_step(*sandbox, rootfs, "root", "touch /by-root", 0);
    run_step(*sandbox, rootfs, "chown", "touch /owned && chown 1000:1000 /owned", 0);
    run_step(*sandbox, rootfs, "user", "touch /tmp/made", 1000);
    // The sandbox child clones the bind source itself here, inside kiln's namespace.
    std::string source = std::string(argv[1]) + "/bind-source";
    if (!kiln::make_directories(source) || !kiln::write_file_atomic(source + "/file", "from-source"))
        return 3;
    run_step(
        *sandbox, rootfs, "mounts",
        "test \"$(cat /src/file)\" = from-source && ! touch /src/new 2>/dev/null && echo t > /scratch/t && "
        "test \"$(cat /run/secrets/s)\" = hidden",
        0,
        {kiln::RunMount{.kind = kiln::RunMountKind::bind, .target = "/src", .source_root = source},
         kiln::RunMount{.kind = kiln::RunMountKind::tmpfs, .target = "/scratch"},
         kiln::RunMount{.kind = kiln::RunMountKind::file, .target = "/run/secrets/s", .content = "hidden"}});
    run_step(*sandbox, rootfs, "tree",
             "mkdir -p /app/sub && echo x > /app/sub/f && chown -R 1234:5678 /app && "
             "test \"$(stat -c %u:%g /app/sub/f)\" = 1234:5678",
             0);
    run_step(*sandbox, rootfs, "switch",
             "test \"$(id -u)\" = 1000 && test \"$(id -g)\" = 1000 && test \"$(sh -c 'sh -c \"id -u\"')\" = 1000 && "
             "mkdir /tmp/by-user && echo hi > /tmp/by-user/f && "
             // A writer waiting for a FIFO's reader waits in the kernel, not in kiln's supervisor.
             "mkfifo /tmp/fifo && (echo x > /tmp/fifo &) && sleep 0.2 && test \"$(id -u)\" = 1000",
             1000);
    kiln::UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    for (const char* path : {"by-root", "owned", "tmp/made", "src", "scratch", "run", "app", "app/sub/f",
                             "tmp/by-user", "tmp/by-user/f"}) {
        struct stat st;
        if (::lstat((rootfs + "/" + path).c_str(), &st) == 0)
            std::printf("stat %s %u %u\n", path, st.st_uid, st.st_gid);
        else
            std::printf("stat %s missing\n", path);
        // The owner a single-id namespace could only record.
        if (auto recorded = kiln::read_override_stat(root.get(), path))
            std::printf("override_%s %u:%u\n", path, recorded->uid, recorded->gid);
    }
    return 0;
}
