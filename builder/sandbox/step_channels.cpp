#include "builder/sandbox/step_channels.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "builder/sandbox/sandbox.hpp"

namespace kiln {

Result<StepChannels> StepChannels::open(const RunSpec& spec) {
    StepChannels channels;
    channels.m_command = command_arrays(spec);
    channels.m_dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!channels.m_dev_null) return fail_errno("open /dev/null");
    KILN_ASSIGN(channels.m_sync, make_pipe());
    KILN_ASSIGN(channels.m_report, make_pipe());
    KILN_ASSIGN(channels.m_stdout, OutputRelay::start(spec.stdout_fd));
    if (spec.stderr_fd != spec.stdout_fd) {
        KILN_ASSIGN(channels.m_stderr, OutputRelay::start(spec.stderr_fd));
    }
    return channels;
}

InitPlan StepChannels::plan(const RunSpec& spec) const {
    InitPlan plan;
    plan.sync_fd = m_sync.first.get();
    plan.report_fd = m_report.second.get();
    plan.rootfs_path = spec.rootfs.c_str();
    plan.hostname = spec.hostname.c_str();
    plan.working_directory = spec.working_directory.c_str();
    plan.uid = spec.uid;
    plan.gid = spec.gid;
    plan.groups = spec.supplementary_gids.data();
    plan.group_count = spec.supplementary_gids.size();
    plan.argv = m_command.argv.data();
    plan.envp = m_command.envp.data();
    plan.exec_candidates = m_command.candidates.data();
    plan.stdin_fd = m_dev_null.get();
    plan.stdout_fd = m_stdout->write_fd();
    plan.stderr_fd = m_stderr ? m_stderr->write_fd() : m_stdout->write_fd();
    return plan;
}

void StepChannels::child_started() {
    // Only the init may hold these ends: EOF on the report pipe must mean its setup is done, and the relays
    // must end with the step's own copies.
    m_sync.first.reset();
    m_report.second.reset();
    m_stdout->close_write_end();
    if (m_stderr) m_stderr->close_write_end();
}

Status StepChannels::go() {
    if (::write(m_sync.second.get(), "g", 1) != 1) return fail_errno("start the RUN sandbox");
    return {};
}

Result<std::vector<InitReport>> StepChannels::read_reports() {
    return read_init_reports(m_report.first.get());
}

void StepChannels::finish_output() {
    m_stdout->finish();
    if (m_stderr) m_stderr->finish();
}

}  // namespace kiln
