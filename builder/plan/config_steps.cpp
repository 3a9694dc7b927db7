// The config instructions that check what they are given: EXPOSE (port specs), STOPSIGNAL (signal names)
// and HEALTHCHECK (durations and retries).

#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "builder/plan/stage_scope.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// "80", "80/udp", "8000-8002/tcp" → "80/tcp", …; an empty result means the text is not a port spec.
std::vector<std::string> port_entries(const std::string& spec) {
    std::string ports = spec;
    std::string protocol = "tcp";
    if (size_t slash = spec.find('/'); slash != std::string::npos) {
        ports = spec.substr(0, slash);
        protocol = to_lower(spec.substr(slash + 1));
    }
    if (protocol != "tcp" && protocol != "udp" && protocol != "sctp") return {};
    std::uint64_t first = 0, last = 0;
    size_t dash = ports.find('-');
    if (!parse_uint64(ports.substr(0, dash), first)) return {};
    last = first;
    if (dash != std::string::npos && !parse_uint64(ports.substr(dash + 1), last)) return {};
    if (first == 0 || last > 65535 || last < first || last - first > 65535) return {};
    std::vector<std::string> entries;
    for (std::uint64_t port = first; port <= last; ++port) entries.push_back(str_cat(port, "/", protocol));
    return entries;
}

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

Result<Step> plan_expose(StageScope& scope, const dockerfile::ExposeInstruction& instruction) {
    RunConfig& config = scope.config();
    for (const std::string& raw : instruction.ports) {
        KILN_ASSIGN(std::string port, scope.expand(raw, instruction));
        std::vector<std::string> entries = port_entries(port);
        if (entries.empty())
            return fail_at(instruction.source_location(), "invalid port \"" + port + "\"");
        config.exposed_ports.insert(entries.begin(), entries.end());
    }
    return step_at(scope, instruction, "EXPOSE");
}

Result<Step> plan_stopsignal(StageScope& scope, const dockerfile::StopsignalInstruction& instruction) {
    KILN_ASSIGN(std::string signal, scope.expand(instruction.signal, instruction));
    if (!valid_signal(signal))
        return fail_at(instruction.source_location(), "invalid signal \"" + signal + "\"");
    RunConfig& config = scope.config();
    config.stop_signal = signal;
    return step_at(scope, instruction, "STOPSIGNAL");
}

Result<Step> plan_healthcheck(StageScope& scope, const dockerfile::HealthcheckInstruction& instruction) {
    RunConfig& config = scope.config();
    HealthConfig health;
    if (instruction.none) {
        health.test = {"NONE"};
    } else {
        if (instruction.args.empty())
            return fail_at(instruction.source_location(), "HEALTHCHECK CMD needs a command");
        if (instruction.shell_form)
            health.test = {"CMD-SHELL", instruction.args[0]};
        else {
            health.test = {"CMD"};
            health.test.insert(health.test.end(), instruction.args.begin(), instruction.args.end());
        }
        struct Duration {
            const std::string* text;
            std::int64_t* target;
            const char* flag;
        };
        for (const Duration& duration : {Duration{&instruction.interval, &health.interval_ns, "--interval"},
                                         Duration{&instruction.timeout, &health.timeout_ns, "--timeout"},
                                         Duration{&instruction.start_period, &health.start_period_ns, "--start-period"},
                                         Duration{&instruction.start_interval, &health.start_interval_ns,
                                                  "--start-interval"}}) {
            if (duration.text->empty()) continue;
            auto parsed = parse_go_duration_ns(*duration.text);
            if (!parsed || (*parsed != 0 && *parsed < 1000000))
                return fail_at(instruction.source_location(), str_cat(duration.flag, " must be a duration of at least 1ms, got \"", *duration.text, "\""));
            *duration.target = *parsed;
        }
        if (!instruction.retries.empty()) {
            std::uint64_t retries = 0;
            if (!parse_uint64(instruction.retries, retries) || retries > 1000000)
                return fail_at(instruction.source_location(), "--retries must be a non-negative number");
            health.retries = static_cast<int>(retries);
        }
    }
    config.healthcheck = std::move(health);
    return step_at(scope, instruction, "HEALTHCHECK");
}

}  // namespace kiln
