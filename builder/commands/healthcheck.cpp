#include "builder/commands/commands.hpp"

#include <cmath>

#include "common/strings.hpp"

namespace kiln {
namespace {

// Go's time.ParseDuration for the units Docker users write: "30s", "1m30s", "1.5h", "500ms", "0".
std::optional<std::int64_t> parse_duration_ns(const std::string& text) {
    if (text == "0") return 0;
    static const std::pair<const char*, double> k_units[] = {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6},
                                                             {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    size_t i = 0;
    if (text.empty()) return std::nullopt;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
        if (start == i) return std::nullopt;
        double value = std::strtod(text.substr(start, i - start).c_str(), nullptr);
        size_t unit_start = i;
        while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
        std::string unit = text.substr(unit_start, i - unit_start);
        double scale = 0;
        for (const auto& [name, factor] : k_units)
            if (unit == name) scale = factor;
        if (scale == 0) return std::nullopt;
        total += value * scale;
    }
    if (total > 9.2e18) return std::nullopt;
    return static_cast<std::int64_t>(std::llround(total));
}

}  // namespace

Status execute_healthcheck(StageState& state, const dockerfile::HealthcheckInstruction& instruction) {
    RunConfig config = state.image.config().config;
    HealthConfig health;
    if (instruction.none) {
        health.test = {"NONE"};
    } else {
        if (instruction.args.empty())
            return std::unexpected(instruction_error(state, instruction, "HEALTHCHECK CMD needs a command"));
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
            auto parsed = parse_duration_ns(*duration.text);
            if (!parsed || (*parsed != 0 && *parsed < 1000000))
                return std::unexpected(instruction_error(
                    state, instruction, str_cat(duration.flag, " must be a duration of at least 1ms, got \"", *duration.text, "\"")));
            *duration.target = *parsed;
        }
        if (!instruction.retries.empty()) {
            std::uint64_t retries = 0;
            if (!parse_uint64(instruction.retries, retries) || retries > 1000000)
                return std::unexpected(instruction_error(state, instruction, "--retries must be a non-negative number"));
            health.retries = static_cast<int>(retries);
        }
    }
    config.healthcheck = std::move(health);
    state.image = state.image.with_run_config(std::move(config));
    state.add_empty_history(instruction);
    return {};
}

}  // namespace kiln
