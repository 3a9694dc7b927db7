#include "builder/commands/commands.hpp"

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

}  // namespace

Status execute_expose(StageState& state, const dockerfile::ExposeInstruction& instruction) {
    RunConfig config = state.image.config().config;
    for (const std::string& raw : instruction.ports) {
        KILN_ASSIGN(std::string port, state.expand(raw, instruction));
        std::vector<std::string> entries = port_entries(port);
        if (entries.empty())
            return std::unexpected(instruction_error(state, instruction, "invalid port \"" + port + "\""));
        config.exposed_ports.insert(entries.begin(), entries.end());
    }
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
