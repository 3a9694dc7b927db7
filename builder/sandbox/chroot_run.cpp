// RUN in chroot mode (sandbox.hpp, SandboxMode::chroot): no namespace and no mount, only what root with
// CAP_SYS_CHROOT and CAP_MKNOD can do to a directory. The step's /dev nodes and its /etc/hosts and
// /etc/resolv.conf are put into the stage's filesystem for the step and taken out again before its snapshot.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "builder/sandbox/cloned_process.hpp"
#include "builder/sandbox/container_init.hpp"
#include "builder/sandbox/mount_stubs.hpp"
#include "builder/sandbox/output_relay.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

// The name the image's own entry is kept under while the host's copy stands in its place.
std::string aside_name(const std::string& name) {
    return ".kiln-image-" + name;
}

// The host's copy of a file in place of the image's entry at `path` (of any type, or none) for one step: the
// image's entry is renamed aside in its own directory and renamed back afterwards, and the directory keeps
// its timestamps. What the step does to the file is lost, as with the read-only bind mount of the other
// modes; RUN layers leave these paths out (chroot_sandbox_run_paths).
class HostFileCopy {
public:
    static Result<std::unique_ptr<HostFileCopy>> place(const RootFs& rootfs, const std::string& path,
                                                       const std::string& content) {
        KILN_ASSIGN(auto parent_path, rootfs.open_parent(path));
        auto copy = std::unique_ptr<HostFileCopy>(new HostFileCopy);
        copy->m_display = rootfs.display(path);
        copy->m_name = parent_path.second;
        copy->m_parent.reset(::openat(parent_path.first.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!copy->m_parent) return fail_errno(str_cat("open the directory of ", copy->m_display));
        struct stat parent;
        if (::fstat(copy->m_parent.get(), &parent) != 0)
            return fail_errno(str_cat("stat the directory of ", copy->m_display));
        copy->m_parent_times[0] = parent.st_atim;
        copy->m_parent_times[1] = parent.st_mtim;
        int dir = copy->m_parent.get();
        struct stat existing;
        if (::fstatat(dir, copy->m_name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
            std::string aside = aside_name(copy->m_name);
            if (::renameat2(dir, copy->m_name.c_str(), dir, aside.c_str(), RENAME_NOREPLACE) != 0)
                return fail_errno(str_cat("rename ", copy->m_display, " aside"));
            copy->m_has_original = true;
        } else if (errno != ENOENT) {
            return fail_errno(str_cat("stat ", copy->m_display));
        }
        copy->m_placed = true;
        UniqueFd file(::openat(dir, copy->m_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                               0644));
        if (!file || ::fchmod(file.get(), 0644) != 0) return fail_errno(str_cat("create ", copy->m_display));
        KILN_TRY(FdWriter(file.get(), copy->m_display).write(content));
        return copy;
    }

    ~HostFileCopy() {
        if (auto restored = restore(); !restored) log_warn(restored.error().message());
    }

    // Puts the image's entry back. Idempotent.
    Status restore() {
        if (!m_placed) return {};
        m_placed = false;
        int dir = m_parent.get();
        KILN_TRY(remove_at(dir, m_name, m_display));
        if (m_has_original &&
            ::renameat2(dir, aside_name(m_name).c_str(), dir, m_name.c_str(), RENAME_NOREPLACE) != 0)
            return fail_errno(str_cat("restore the image's ", m_display, " after the RUN"));
        if (::futimens(dir, m_parent_times) != 0)
            return fail_errno(str_cat("restore the timestamps of the directory of ", m_display));
        return {};
    }

private:
    HostFileCopy() = default;
    UniqueFd m_parent;
    std::string m_name;
    std::string m_display;
    timespec m_parent_times[2]{};
    bool m_has_original = false;
    bool m_placed = false;
};

// The host's /etc/hosts and /etc/resolv.conf, for the names a step resolves.
constexpr const char* k_host_files[] = {"etc/hosts", "etc/resolv.conf"};

}  // namespace

std::vector<std::string> chroot_sandbox_run_paths() {
    return {"/etc/hosts", "/etc/resolv.conf", str_cat("/etc/", aside_name("hosts")),
            str_cat("/etc/", aside_name("resolv.conf"))};
}

Result<int> Sandbox::run_chroot(const RunSpec& spec) const {
    if (!spec.mounts.empty())
        return fail(str_cat("RUN --mount needs a sandbox that can mount, and the chroot sandbox cannot (",
                            m_description, "); run kiln where it may create a user namespace, or drop --mount"));
    if (spec.network == NetworkMode::none)
        return fail("RUN --network=none needs a network namespace, which the chroot sandbox cannot create");
    if (spec.overlay) return fail("the chroot sandbox cannot run a step on an overlay rootfs");
    KILN_ASSIGN(RootFs rootfs, RootFs::open(spec.rootfs));

    // Declared first: removed last, after the files and nodes inside them.
    MountStubs stubs;
    KILN_TRY_CONTEXT(stubs.ensure(rootfs, "dev", StubKind::directory), "creating the RUN's /dev");
    std::vector<std::string> missing_nodes;
    for (const char* node : k_dev_nodes) {
        struct stat host;
        std::string path = str_cat("dev/", node);
        Status made = ::stat(str_cat("/", path).c_str(), &host) == 0 && S_ISCHR(host.st_mode)
                          ? stubs.ensure(rootfs, path, StubKind::char_device, host.st_rdev)
                          : fail(str_cat("the host has no /", path));
        if (!made) missing_nodes.push_back(str_cat("/", path, " (", made.error().message(), ")"));
    }
    if (!missing_nodes.empty())
        log_warn("the chroot sandbox could not give this RUN ", join(missing_nodes, ", "),
                 ": commands that open them fail");

    std::vector<std::unique_ptr<HostFileCopy>> host_files;
    for (const char* path : k_host_files) {
        auto content = read_file(str_cat("/", path));
        if (!content) {
            log_info("not copying /", path, " into the RUN: ", content.error().message());
            continue;
        }
        KILN_TRY_CONTEXT(stubs.ensure(rootfs, "etc", StubKind::directory), "creating the RUN's /etc");
        KILN_ASSIGN(auto copy, HostFileCopy::place(rootfs, path, *content));
        host_files.push_back(std::move(copy));
    }

    CommandArrays command = command_arrays(spec);
    KILN_ASSIGN(auto sync_pipe, make_pipe());
    KILN_ASSIGN(auto report_pipe, make_pipe());
    KILN_ASSIGN(std::unique_ptr<OutputRelay> stdout_relay, OutputRelay::start(spec.stdout_fd));
    std::unique_ptr<OutputRelay> stderr_relay;
    if (spec.stderr_fd != spec.stdout_fd) {
        KILN_ASSIGN(stderr_relay, OutputRelay::start(spec.stderr_fd));
    }
    // Without /proc, /dev/stdout and /dev/stderr cannot lead to the step's descriptors: they are fifos whose
    // every byte kiln relays to the same place (`tee /dev/stderr`, `echo > /dev/stdout`).
    std::vector<std::unique_ptr<OutputRelay>> fifo_relays;
    for (auto [name, target] : {std::pair{"stdout", spec.stdout_fd}, std::pair{"stderr", spec.stderr_fd}}) {
        std::string path = str_cat("dev/", name);
        if (!stubs.ensure(rootfs, path, StubKind::fifo)) continue;  // the image has its own
        KILN_ASSIGN(auto parent, rootfs.open_parent(path));
        struct stat made;
        if (::fstatat(parent.first.get(), name, &made, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISFIFO(made.st_mode)) continue;
        KILN_ASSIGN(auto relay, OutputRelay::start_from_fifo(parent.first.get(), name, target));
        fifo_relays.push_back(std::move(relay));
    }

    InitPlan plan;
    plan.sync_fd = sync_pipe.first.get();
    plan.report_fd = report_pipe.second.get();
    plan.rootfs_path = spec.rootfs.c_str();
    plan.hostname = spec.hostname.c_str();
    plan.working_directory = spec.working_directory.c_str();
    plan.uid = spec.uid;
    plan.gid = spec.gid;
    plan.groups = spec.supplementary_gids.data();
    plan.group_count = spec.supplementary_gids.size();
    plan.argv = command.argv.data();
    plan.envp = command.envp.data();
    plan.exec_candidates = command.candidates.data();
    plan.stdout_fd = stdout_relay->write_fd();
    plan.stderr_fd = stderr_relay ? stderr_relay->write_fd() : stdout_relay->write_fd();
    plan.capabilities = CapabilitySet::docker_default;

    KILN_ASSIGN(ClonedProcess child, with_context(ClonedProcess::spawn(0, chroot_init_main, &plan),
                                                  "starting the RUN's chroot sandbox"));
    sync_pipe.first.reset();
    report_pipe.second.reset();
    stdout_relay->close_write_end();
    if (stderr_relay) stderr_relay->close_write_end();
    if (::write(sync_pipe.second.get(), "g", 1) != 1) return fail_errno("start the RUN's chroot sandbox");
    KILN_ASSIGN(std::vector<InitReport> reports, read_init_reports(report_pipe.first.get()));
    KILN_ASSIGN(int status, child.wait());
    // The init killed everything the step left behind before it exited: the output pipes are closed.
    stdout_relay->finish();
    if (stderr_relay) stderr_relay->finish();
    for (auto& relay : fifo_relays) relay->finish();
    while (!host_files.empty()) {
        KILN_TRY(host_files.back()->restore());
        host_files.pop_back();
    }
    KILN_TRY_CONTEXT(stubs.remove(), "removing the RUN's /dev nodes");
    return command_result(reports, status, plan);
}

}  // namespace kiln
