#pragma once
// Parent side of one RUN step, the same in every sandbox mode: the command's argument arrays, its stdin (the
// host's /dev/null, whatever the image's is), the relays of its stdout and stderr, and the pipes to the init (a
// sync pipe whose closing tells the init that kiln is gone, and the init's report pipe).

#include <memory>
#include <utility>
#include <vector>

#include "builder/sandbox/container_init.hpp"
#include "builder/sandbox/output_relay.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace kiln {

class StepChannels {
public:
    // Opens everything for `spec`, which must outlive this (the arrays point into it).
    static Result<StepChannels> open(const RunSpec& spec);

    // An InitPlan with the fields that come from `spec` and from these channels; the caller adds the rest.
    InitPlan plan(const RunSpec& spec) const;

    // Once the init is cloned: closes the ends that only it may hold.
    void child_started();
    // Tells the init to go on (after its ids are mapped). The sync pipe's write end stays open until
    // close_sync() or the end of this object: its closing tells the init that kiln is gone.
    Status go();
    // Every report of the init, until its setup is done and the command exec'd (or failed to).
    Result<std::vector<InitReport>> read_reports();
    // Tells the init that kiln is gone or gives up on the step.
    void close_sync() { m_sync.second.reset(); }
    // Once the step and everything it started are gone: what they wrote has reached its destination.
    void finish_output();

private:
    StepChannels() = default;
    CommandArrays m_command;
    UniqueFd m_dev_null;
    std::pair<UniqueFd, UniqueFd> m_sync;
    std::pair<UniqueFd, UniqueFd> m_report;
    std::unique_ptr<OutputRelay> m_stdout;
    std::unique_ptr<OutputRelay> m_stderr;  // null when stderr goes where stdout does
};

}  // namespace kiln
