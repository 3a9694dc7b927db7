// RUN in chroot mode (sandbox.hpp, SandboxMode::chroot): no namespace and no mount, only what root with
// CAP_SYS_CHROOT and CAP_MKNOD can do to a directory. The step's /dev nodes and its /etc/hosts and
// /etc/resolv.conf are put into the stage's filesystem for the step and taken out again before its snapshot.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "builder/sandbox/cloned_process.hpp"
#include "builder/sandbox/container_init.hpp"
#include "builder/sandbox/mount_stubs.hpp"
#include "builder/sandbox/output_relay.hpp"
#include "builder/sandbox/step_channels.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

bool same_time(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Makes the stand-in `name` in the directory `dir`; `display` names it in errors.
using MakeStandIn = std::function<Status(int dir, const std::string& name, const std::string& display)>;

// Something kiln puts at `path` in the stage's filesystem for one step, in place of the image's entry there (of
// any type, or none): the image's entry is moved into `aside`, a directory of kiln's beside the rootfs that the
// step cannot reach, and moved back afterwards. The directory holding it gets its timestamps back unless the step
// changed it.
class StandIn {
public:
    static Result<std::unique_ptr<StandIn>> place(const RootFs& rootfs, const std::string& path, int aside_fd,
                                                  std::string aside_name, const MakeStandIn& make) {
        KILN_ASSIGN(auto parent_path, rootfs.open_parent(path));
        auto stand_in = std::unique_ptr<StandIn>(new StandIn);
        stand_in->m_display = rootfs.display(path);
        stand_in->m_name = parent_path.second;
        stand_in->m_aside_fd = aside_fd;
        stand_in->m_aside_name = std::move(aside_name);
        // O_PATH allows neither futimens nor fstat of times on every kernel: reopen the directory for real.
        stand_in->m_parent.reset(::openat(parent_path.first.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!stand_in->m_parent) return fail_errno(str_cat("open the directory of ", stand_in->m_display));
        int dir = stand_in->m_parent.get();
        struct stat before;
        if (::fstat(dir, &before) != 0) return fail_errno(str_cat("stat the directory of ", stand_in->m_display));
        stand_in->m_parent_times[0] = before.st_atim;
        stand_in->m_parent_times[1] = before.st_mtim;
        if (::renameat2(dir, stand_in->m_name.c_str(), aside_fd, stand_in->m_aside_name.c_str(), RENAME_NOREPLACE) == 0)
            stand_in->m_has_original = true;
        else if (errno != ENOENT)
            return fail_errno(str_cat("move the image's ", stand_in->m_display, " aside for the RUN"));
        stand_in->m_placed = true;
        KILN_TRY(make(dir, stand_in->m_name, stand_in->m_display));
        struct stat after;
        if (::fstat(dir, &after) != 0) return fail_errno(str_cat("stat the directory of ", stand_in->m_display));
        stand_in->m_parent_mtime_after = after.st_mtim;
        return stand_in;
    }

    ~StandIn() {
        if (auto restored = restore(); !restored) log_warn(restored.error().message());
    }

    // Puts the image's entry back. Idempotent.
    Status restore() {
        if (!m_placed) return {};
        m_placed = false;
        int dir = m_parent.get();
        struct stat now;
        if (::fstat(dir, &now) != 0) return fail_errno(str_cat("stat the directory of ", m_display));
        KILN_TRY(remove_at(dir, m_name, m_display));
        if (m_has_original && ::renameat2(m_aside_fd, m_aside_name.c_str(), dir, m_name.c_str(), RENAME_NOREPLACE) != 0)
            return fail_errno(str_cat("put the image's ", m_display, " back after the RUN"));
        // The step's own change to the directory (a file made or removed there) keeps its time.
        timespec times[2] = {now.st_atim, now.st_mtim};
        if (same_time(now.st_mtim, m_parent_mtime_after)) {
            times[0] = m_parent_times[0];
            times[1] = m_parent_times[1];
        }
        if (::futimens(dir, times) != 0)
            return fail_errno(str_cat("restore the timestamps of the directory of ", m_display));
        return {};
    }

private:
    StandIn() = default;
    UniqueFd m_parent;
    std::string m_name;
    std::string m_display;
    int m_aside_fd = -1;
    std::string m_aside_name;
    timespec m_parent_times[2]{};
    timespec m_parent_mtime_after{};
    bool m_has_original = false;
    bool m_placed = false;
};

MakeStandIn make_file(const std::string& content) {
    return [content](int dir, const std::string& name, const std::string& display) -> Status {
        UniqueFd file(::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!file || ::fchmod(file.get(), 0644) != 0) return fail_errno(str_cat("create ", display));
        return FdWriter(file.get(), display).write(content);
    };
}

// A node of mode 0666: a character device numbered `device`, or a fifo.
MakeStandIn make_node(mode_t type, dev_t device) {
    return [type, device](int dir, const std::string& name, const std::string& display) -> Status {
        if (::mknodat(dir, name.c_str(), type | 0666, device) != 0) return fail_errno(str_cat("mknod ", display));
        UniqueFd node(::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (!node || ::fstat(node.get(), &st) != 0 || (st.st_mode & S_IFMT) != type)
            return fail_errno(str_cat("open ", display));
        // fchmod refuses O_PATH descriptors: through the descriptor's /proc entry, never a path the step chose.
        if (::fchmodat(AT_FDCWD, str_cat("/proc/self/fd/", node.get()).c_str(), 0666, 0) != 0)
            return fail_errno(str_cat("chmod ", display));
        return {};
    };
}

// The host's /etc/hosts and /etc/resolv.conf, for the names a step resolves.
constexpr const char* k_host_files[] = {"etc/hosts", "etc/resolv.conf"};

}  // namespace

std::vector<std::string> chroot_sandbox_run_paths() {
    return {"/etc/hosts", "/etc/resolv.conf"};
}

Result<int> Sandbox::run_chroot(const RunSpec& spec) const {
    if (!spec.mounts.empty())
        return fail(str_cat("RUN --mount needs a sandbox that can mount, and the chroot sandbox cannot (",
                            m_description, "); run kiln where it may create a user namespace, or drop --mount"));
    if (spec.network != NetworkMode::host)
        return fail(str_cat(spec.network == NetworkMode::none ? "RUN --network=none" : "--run-network=private",
                            " needs a network namespace, which the chroot sandbox cannot create"));
    if (spec.overlay) return fail("the chroot sandbox cannot run a step on an overlay rootfs");
    KILN_ASSIGN(RootFs rootfs, RootFs::open(spec.rootfs));

    // Declared in this order: the stand-ins go back before the stubs holding them are removed, and before the
    // directory holding the image's own entries is.
    KILN_ASSIGN(TempDir aside, TempDir::create(parent_path(spec.rootfs), "chroot-aside-"));
    UniqueFd aside_fd(::open(aside.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!aside_fd) return fail_errno(str_cat("open ", aside.path()));
    MountStubs stubs;
    std::vector<std::unique_ptr<StandIn>> stand_ins;
    auto stand_in = [&](const std::string& path, const MakeStandIn& make) -> Status {
        KILN_ASSIGN(auto placed, StandIn::place(rootfs, path, aside_fd.get(), str_cat(stand_ins.size()), make));
        stand_ins.push_back(std::move(placed));
        return {};
    };

    KILN_TRY_CONTEXT(stubs.ensure(rootfs, "dev", StubKind::directory), "creating the RUN's /dev");
    std::vector<std::string> missing_nodes;
    for (const char* node : k_dev_nodes) {
        struct stat host;
        std::string path = str_cat("dev/", node);
        Status made = ::stat(str_cat("/", path).c_str(), &host) == 0 && S_ISCHR(host.st_mode)
                          ? stand_in(path, make_node(S_IFCHR, host.st_rdev))
                          : fail(str_cat("the host has no /", path));
        if (made) continue;  // a stand-in that failed has put back what the image had there
        if (std::string_view(node) == "null" && stand_in(path, make_file("")))
            log_warn("this RUN's /dev/null is an empty regular file (", made.error().message(),
                     "): what the step writes to it is dropped after the step, but reads within it see it");
        else
            missing_nodes.push_back(str_cat("/", path, " (", made.error().message(), ")"));
    }
    if (!missing_nodes.empty())
        log_warn("the chroot sandbox could not give this RUN ", join(missing_nodes, ", "),
                 ": commands that open them fail");
    // Without /proc, /dev/stdout and /dev/stderr cannot lead to the step's descriptors: they are fifos whose
    // every byte kiln relays to the same place (`tee /dev/stderr`, `echo > /dev/stdout`).
    for (const char* name : {"stdout", "stderr"}) KILN_TRY(stand_in(str_cat("dev/", name), make_node(S_IFIFO, 0)));

    for (const char* path : k_host_files) {
        auto content = read_file(str_cat("/", path));
        if (!content) {
            log_info("not copying /", path, " into the RUN: ", content.error().message());
            continue;
        }
        KILN_TRY_CONTEXT(stubs.ensure(rootfs, "etc", StubKind::directory), "creating the RUN's /etc");
        KILN_TRY(stand_in(path, make_file(*content)));
    }

    KILN_ASSIGN(StepChannels channels, StepChannels::open(spec));
    std::vector<std::unique_ptr<OutputRelay>> fifo_relays;
    for (auto [name, target] : {std::pair{"stdout", spec.stdout_fd}, std::pair{"stderr", spec.stderr_fd}}) {
        KILN_ASSIGN(auto parent, rootfs.open_parent(str_cat("dev/", name)));
        KILN_ASSIGN(auto relay, OutputRelay::start_from_fifo(parent.first.get(), name, target));
        fifo_relays.push_back(std::move(relay));
    }

    InitPlan plan = channels.plan(spec);
    plan.capabilities = CapabilitySet::docker_default;

    KILN_ASSIGN(ClonedProcess child, with_context(ClonedProcess::spawn(0, chroot_init_main, &plan),
                                                  "starting the RUN's chroot sandbox"));
    // On an early way out of here, the init must end the step's processes before it exits: kiln closes its end
    // of the sync pipe, which the init takes as the order, and waits for it. Killing the init instead would
    // leave them running, reparented to the pod's init.
    struct EndInit {
        StepChannels& channels;
        ClonedProcess& init;
        bool done = false;
        ~EndInit() {
            if (done) return;
            channels.close_sync();
            [[maybe_unused]] auto ended = init.wait();
        }
    } init_guard{channels, child};
    channels.child_started();
    KILN_TRY(channels.go());
    KILN_ASSIGN(std::vector<InitReport> reports, channels.read_reports());
    // The init exits once the step and everything it started are gone.
    KILN_ASSIGN(int status, child.wait());
    init_guard.done = true;
    // The init killed everything the step left behind before it exited: the output pipes are closed.
    channels.finish_output();
    for (auto& relay : fifo_relays) relay->finish();
    while (!stand_ins.empty()) {
        KILN_TRY(stand_ins.back()->restore());
        stand_ins.pop_back();
    }
    KILN_TRY_CONTEXT(stubs.remove(), "removing the RUN's /dev and /etc");
    return command_result(reports, status, plan);
}

}  // namespace kiln
