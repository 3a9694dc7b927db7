#pragma once
// A busybox rootfs in a temporary directory and a detected sandbox, for tests that run real RUN steps as
// root.

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "builder/sandbox/sandbox.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "tests/builder/sandbox/busybox_rootfs.hpp"

namespace kiln {

// Pids of processes whose command line is exactly `argv`.
inline std::vector<pid_t> processes_running(const std::vector<std::string>& argv) {
    std::string wanted;
    for (const std::string& arg : argv) wanted += arg + '\0';
    std::vector<pid_t> found;
    DIR* proc = ::opendir("/proc");
    while (dirent* entry = proc ? ::readdir(proc) : nullptr) {
        std::uint64_t pid = 0;
        if (!parse_uint64(entry->d_name, pid)) continue;
        if (read_file("/proc/" + std::to_string(pid) + "/cmdline").value_or("") == wanted)
            found.push_back(pid_t(pid));
    }
    if (proc) ::closedir(proc);
    return found;
}

struct RunOutput {
    int exit_code = -1;
    std::string output;  // stdout and stderr, interleaved
};

class SandboxTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "needs root: these tests map a host id range and make idmapped mounts";
        if (!path_exists(k_host_busybox))
            GTEST_SKIP() << k_host_busybox << " is missing (apt install busybox-static)";
        auto work = TempDir::create(default_temp_parent(), "kiln-sandbox-test-");
        ASSERT_TRUE(work) << work.error().message();
        m_work = std::move(*work);
        m_rootfs = m_work.path() + "/rootfs";
        ASSERT_TRUE(make_directories(m_rootfs));
        auto built = build_busybox_rootfs(m_rootfs);
        ASSERT_TRUE(built) << built.error().message();
        auto sandbox = Sandbox::detect(options());
        if (!sandbox && (sandbox.error().errno_value() == EPERM || sandbox.error().errno_value() == ENOSPC))
            GTEST_SKIP() << sandbox.error().message();
        ASSERT_TRUE(sandbox) << sandbox.error().message();
        m_sandbox = std::make_unique<Sandbox>(std::move(*sandbox));
    }

    virtual SandboxOptions options() const { return {}; }

    RunSpec spec(std::vector<std::string> argv) const {
        RunSpec spec;
        spec.rootfs = m_rootfs;
        spec.argv = std::move(argv);
        spec.environment = {"PATH=/bin", "HOME=/root"};
        return spec;
    }

    RunSpec shell(const std::string& script) const { return spec({"sh", "-c", script}); }

    // Runs `spec` with stdout and stderr captured in a file outside the rootfs.
    RunOutput run(RunSpec spec) {
        std::string path = m_work.path() + "/output-" + std::to_string(m_outputs++);
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        EXPECT_TRUE(fd) << path;
        spec.stdout_fd = fd.get();
        spec.stderr_fd = fd.get();
        auto exit_code = m_sandbox->run(spec);
        EXPECT_TRUE(exit_code) << exit_code.error().message();
        RunOutput output;
        output.exit_code = exit_code ? *exit_code : -1;
        output.output = read_file(path).value_or("");
        return output;
    }

    TempDir m_work;
    std::string m_rootfs;
    std::unique_ptr<Sandbox> m_sandbox;
    int m_outputs = 0;
};

}  // namespace kiln
