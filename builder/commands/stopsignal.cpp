#include "builder/commands/commands.hpp"

#include <csignal>

#include "common/strings.hpp"

namespace kiln {
namespace {

bool valid_signal(const std::string& text) {
    std::uint64_t number = 0;
    if (parse_uint64(text, number)) return number > 0 && number < 65;
    std::string name = text;
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (name.starts_with("SIG")) name = name.substr(3);
    static const char* const k_names[] = {"ABRT", "ALRM", "BUS",  "CHLD", "CONT", "FPE",    "HUP",  "ILL",
                                          "INT",  "IO",   "KILL", "PIPE", "PROF", "PWR",    "QUIT", "SEGV",
                                          "STOP", "SYS",  "TERM", "TRAP", "TSTP", "TTIN",   "TTOU", "URG",
                                          "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "STKFLT"};
    for (const char* known : k_names)
        if (name == known) return true;
    return name.starts_with("RTMIN") || name.starts_with("RTMAX");
}

}  // namespace

Status execute_stopsignal(StageState& state, const dockerfile::StopsignalInstruction& instruction) {
    KILN_ASSIGN(std::string signal, state.expand(instruction.signal, instruction));
    if (!valid_signal(signal))
        return std::unexpected(instruction_error(state, instruction, "invalid signal \"" + signal + "\""));
    RunConfig config = state.image.config().config;
    config.stop_signal = signal;
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
