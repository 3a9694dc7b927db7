#include "tests/pods/pod.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string_view>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"

namespace kiln::test {
namespace {

constexpr const char* k_runc = "/usr/sbin/runc";

std::vector<std::string> capability_list(PodCapabilities capabilities) {
    switch (capabilities) {
        case PodCapabilities::docker_default:
            return {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",      "CAP_MKNOD",
                    "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",     "CAP_SETPCAP",
                    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};
        case PodCapabilities::crio_default:
            return {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",           "CAP_SETGID",
                    "CAP_SETUID", "CAP_SETPCAP",      "CAP_KILL",   "CAP_NET_BIND_SERVICE"};
        case PodCapabilities::none:
            return {};
    }
    return {};
}

nlohmann::json deny(const std::vector<std::string>& names, int errno_value) {
    return {{"names", names}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", errno_value}};
}

// A rule refusing clone(2) when its flags hold `flag` (rules for one call are alternatives).
nlohmann::json deny_clone_with(unsigned long flag) {
    nlohmann::json rule = deny({"clone"}, EPERM);
    rule["args"] = nlohmann::json::array({{{"index", 0}, {"value", flag}, {"valueTwo", flag}, {"op", "SCMP_CMP_MASKED_EQ"}}});
    return rule;
}

// What no container's profile allows.
nlohmann::json no_container_needs() {
    return deny({"kexec_load", "init_module", "finit_module", "delete_module", "open_by_handle_at", "reboot", "swapon",
                 "swapoff"},
                EPERM);
}

// An OCI profile that allows every call but those `syscalls` rules refuse.
nlohmann::json allowing_all_but(const nlohmann::json& syscalls) {
    return {{"defaultAction", "SCMP_ACT_ALLOW"},
            {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
            {"syscalls", syscalls}};
}

// RuntimeDefault as containerd and Docker have it, for a pod without CAP_SYS_ADMIN (pod.hpp).
nlohmann::json runtime_default_profile() {
    nlohmann::json syscalls = nlohmann::json::array();
    {
        // What moby's and containerd's profile allow only with CAP_SYS_ADMIN, or not at all (pivot_root).
        syscalls.push_back(deny({"unshare", "setns", "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
                                 "fspick", "move_mount", "open_tree", "mount_setattr", "sethostname", "setdomainname"},
                                EPERM));
        for (unsigned long flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC,
                                   CLONE_NEWCGROUP})
            syscalls.push_back(deny_clone_with(flag));
        syscalls.push_back(deny({"clone3"}, ENOSYS));
    }
    syscalls.push_back(no_container_needs());
    return allowing_all_but(syscalls);
}

// RuntimeDefault as CRI-O has it, for a pod without CAP_SYS_CHROOT and CAP_SYS_ADMIN (pod.hpp).
nlohmann::json crio_default_profile() {
    return allowing_all_but(nlohmann::json::array(
        {deny({"chroot"}, EPERM), deny({"sethostname", "setdomainname"}, EPERM), no_container_needs()}));
}

nlohmann::json device_rule(const char* type, int major, int minor, const char* access) {
    nlohmann::json rule = {{"allow", true}, {"type", type}, {"access", access}};
    if (major >= 0) rule["major"] = major;
    if (minor >= 0) rule["minor"] = minor;
    return rule;
}

// The pod's environment, plus the sanitizer options the suite runs under (scripts/test-sanitizers), so that an
// instrumented kiln in the pod reports the same way. Leak checking is off there: LeakSanitizer stops the world
// with ptrace, which a pod's seccomp profile may deny, and then fails the run however clean it was.
std::vector<std::string> pod_environment(const PodSpec& spec) {
    std::vector<std::string> environment = spec.environment;
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
        const char* value = std::getenv(name);
        if (!value) continue;
        std::string options = value;
        if (std::string_view(name) == "ASAN_OPTIONS") options += ":detect_leaks=0";
        environment.push_back(str_cat(name, "=", options));
    }
    return environment;
}

}  // namespace

Result<nlohmann::json> pod_config(const PodSpec& spec, const std::string& rootfs) {
    std::vector<std::string> capabilities = capability_list(spec.capabilities);
    nlohmann::json process = {
        {"terminal", false},
        {"user", {{"uid", spec.uid}, {"gid", spec.gid}}},
        {"args", spec.args},
        {"env", pod_environment(spec)},
        {"cwd", spec.working_directory},
        {"capabilities",
         {{"bounding", capabilities}, {"effective", capabilities}, {"permitted", capabilities},
          {"inheritable", nlohmann::json::array()}}},
        {"noNewPrivileges", spec.no_new_privileges},
    };
    // A non-root process keeps no capability, as the kubelet's runtime gives it.
    if (spec.uid != 0) process["capabilities"].erase("effective"), process["capabilities"].erase("permitted");

    nlohmann::json mounts = {
        {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"}, {"options", {"nosuid", "noexec", "nodev"}}},
    };
    // A fresh sysfs needs the network namespace's owner; a pod in a user namespace that shares the host's network
    // (these do, to reach the tests' registry) gets the host's, bound read-only.
    if (spec.user_namespace)
        mounts.push_back({{"destination", "/sys"}, {"type", "bind"}, {"source", "/sys"}, {"options", {"rbind", "ro"}}});
    else
        mounts.push_back({{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
                          {"options", {"nosuid", "noexec", "nodev", "ro"}}});
    for (const char* file : {"/etc/hosts", "/etc/resolv.conf"})
        if (path_exists(file))
            mounts.push_back({{"destination", file}, {"type", "bind"}, {"source", file}, {"options", {"rbind", "ro"}}});
    for (const auto& [host, pod] : spec.volumes)
        mounts.push_back({{"destination", pod}, {"type", "bind"}, {"source", host}, {"options", {"rbind", "rw"}}});

    nlohmann::json namespaces = {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}};
    nlohmann::json linux_section = {
        {"namespaces", namespaces},
        // runc's and containerd's defaults.
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
        // Docker's device rules: any node may be made, the usual ones used.
        {"resources",
         {{"devices",
           {{{"allow", false}, {"access", "rwm"}}, device_rule("c", -1, -1, "m"), device_rule("b", -1, -1, "m"),
            device_rule("c", 1, 3, "rwm"), device_rule("c", 1, 5, "rwm"), device_rule("c", 1, 7, "rwm"),
            device_rule("c", 1, 8, "rwm"), device_rule("c", 1, 9, "rwm"), device_rule("c", 5, 0, "rwm"),
            device_rule("c", 5, 1, "rwm"), device_rule("c", 5, 2, "rwm"), device_rule("c", 136, -1, "rwm")}}}},
    };
    if (spec.seccomp == PodSeccomp::runtime_default) linux_section["seccomp"] = runtime_default_profile();
    if (spec.seccomp == PodSeccomp::crio_default) linux_section["seccomp"] = crio_default_profile();
    if (spec.seccomp == PodSeccomp::localhost) {
        KILN_ASSIGN(std::string profile, read_file(spec.localhost_profile));
        auto parsed = nlohmann::json::parse(profile, nullptr, false);
        if (parsed.is_discarded()) return fail(str_cat(spec.localhost_profile, ": not JSON"));
        linux_section["seccomp"] = parsed;
    }
    if (spec.user_namespace) {
        linux_section["namespaces"].push_back({{"type", "user"}});
        nlohmann::json map = {{{"containerID", 0}, {"hostID", spec.host_id_base}, {"size", 65536}}};
        linux_section["uidMappings"] = map;
        linux_section["gidMappings"] = map;
    }
    return nlohmann::json{{"ociVersion", "1.0.2"},
            {"process", process},
            {"root", {{"path", rootfs}, {"readonly", false}}},
            {"hostname", "pod"},
            {"mounts", mounts},
            {"linux", linux_section}};
}

Result<PodRun> run_pod(const std::string& bundle, const std::string& rootfs, const PodSpec& spec, int timeout_seconds) {
    KILN_ASSIGN(nlohmann::json config, pod_config(spec, rootfs));
    KILN_TRY(write_file_atomic(bundle + "/config.json", config.dump(2)));
    KILN_ASSIGN(TempDir state, TempDir::create(default_temp_parent(), "kiln-runc-state-"));
    static std::atomic<int> counter{0};
    std::string id = str_cat("kiln-pod-", ::getpid(), "-", counter++);
    ProcessOptions options;
    options.timeout = std::chrono::seconds(timeout_seconds);
    auto run = run_process({k_runc, "--root", state.path(), "run", "--bundle", bundle, id}, options);
    // Whatever happened, no container of this test outlives it.
    ProcessOptions quiet;
    [[maybe_unused]] auto deleted = run_process({k_runc, "--root", state.path(), "delete", "--force", id}, quiet);
    if (!run) return fail(std::move(run).error().context(str_cat("runc run ", id)));
    return PodRun{.exit_code = run->exit_code, .output = run->stdout_bytes + run->stderr_bytes};
}

std::string pods_unavailable() {
    if (::access(k_runc, X_OK) != 0) return "runc is not installed (scripts/setup installs it)";
    if (::geteuid() != 0) return "runc needs root to run the emulated pods";
    return "";
}

}  // namespace kiln::test
