#include "builder/plan/variables.hpp"

#include "common/strings.hpp"

namespace kiln {

BuildArgs::BuildArgs(const std::vector<std::pair<std::string, std::string>>& flags) {
    for (const auto& [name, value] : flags) {
        if (!m_values.contains(name)) m_order.push_back(name);
        m_values[name] = value;
    }
}

std::optional<std::string> BuildArgs::take(const std::string& name) {
    std::lock_guard lock(m_mutex);
    auto found = m_values.find(name);
    if (found == m_values.end()) return std::nullopt;
    m_used.insert(name);
    return found->second;
}

std::vector<std::string> BuildArgs::unused() const {
    std::lock_guard lock(m_mutex);
    std::vector<std::string> names;
    for (const std::string& name : m_order)
        if (!m_used.contains(name) && !is_proxy_arg(name)) names.push_back(name);
    return names;
}

std::vector<std::string> BuildArgs::proxy_environment() const {
    std::vector<std::string> environment;
    for (const std::string& name : m_order)
        if (is_proxy_arg(name)) environment.push_back(str_cat(name, "=", m_values.at(name)));
    return environment;
}

bool is_proxy_arg(std::string_view name) {
    std::string lower = to_lower(name);
    return lower == "http_proxy" || lower == "https_proxy" || lower == "ftp_proxy" || lower == "no_proxy" ||
           lower == "all_proxy";
}

Result<MetaArgs> MetaArgs::evaluate(const dockerfile::Dockerfile& dockerfile, BuildArgs& build_args,
                                    const BuildPlatforms& platforms) {
    MetaArgs meta;
    for (const auto& [prefix, platform] : {std::pair{"TARGET", &platforms.target}, std::pair{"BUILD", &platforms.build}}) {
        std::string prefix_text = prefix;
        auto predefined = [&](const std::string& suffix, const std::string& value) {
            std::string name = prefix_text + suffix;
            std::optional<std::string> given = build_args.take(name);
            meta.m_args.emplace_back(name, given.value_or(value));
        };
        predefined("PLATFORM", platform->str());
        predefined("OS", platform->os);
        predefined("ARCH", platform->architecture);
        predefined("VARIANT", platform->variant);
    }
    dockerfile::ShellExpander expander(dockerfile.escape);
    for (const dockerfile::ArgInstruction& instruction : dockerfile.meta_args) {
        SourceLocation where = instruction.source_location();
        for (const auto& arg : instruction.args) {
            // As in a stage, the name itself may use earlier ARGs.
            KILN_ASSIGN(std::string name, with_location(expander.process_word(arg.name, meta.lookup()), where));
            if (name.empty()) return fail_at(where, "ARG name is empty after expansion");
            std::optional<std::string> value = build_args.take(name);
            if (!value && arg.default_value) {
                KILN_ASSIGN(std::string expanded,
                            with_location(expander.process_word(*arg.default_value, meta.lookup()), where));
                value = std::move(expanded);
            }
            if (!value && !arg.default_value) value = meta.value(name);  // a predefined platform ARG
            meta.m_args.emplace_back(name, std::move(value));
        }
    }
    return meta;
}

std::optional<std::string> MetaArgs::value(const std::string& name) const {
    std::optional<std::string> found;
    for (const auto& [arg_name, value] : m_args)
        if (arg_name == name) found = value;
    return found;
}

dockerfile::EnvLookup MetaArgs::lookup() const {
    auto args = m_args;
    return [args](std::string_view name) -> std::optional<std::string> {
        std::optional<std::string> found;
        for (const auto& [arg_name, value] : args)
            if (arg_name == name) found = value;
        return found;
    };
}

void StageArgs::declare(const std::string& name, std::optional<std::string> expanded_default, BuildArgs& build_args,
                        const MetaArgs& meta) {
    std::optional<std::string> value = build_args.take(name);
    if (!value) value = std::move(expanded_default);
    if (!value) value = meta.value(name);
    for (auto& [arg_name, arg_value] : m_args) {
        if (arg_name == name) {
            arg_value = std::move(value);
            return;
        }
    }
    m_args.emplace_back(name, std::move(value));
}

dockerfile::EnvLookup StageArgs::expansion_lookup(const RunConfig& config) const {
    std::vector<std::string> env = config.env;
    auto args = m_args;
    return [env, args](std::string_view name) -> std::optional<std::string> {
        for (auto entry = env.rbegin(); entry != env.rend(); ++entry) {
            size_t equals = entry->find('=');
            if (std::string_view(*entry).substr(0, equals) == name)
                return equals == std::string::npos ? std::string() : entry->substr(equals + 1);
        }
        for (const auto& [arg_name, value] : args)
            if (arg_name == name) return value;
        return std::nullopt;
    };
}

std::vector<std::string> StageArgs::run_environment(const RunConfig& config) const {
    std::vector<std::string> environment = config.env;
    for (const auto& [name, value] : m_args) {
        if (!value || config.env_value(name)) continue;
        environment.push_back(str_cat(name, "=", *value));
    }
    for (const std::string& proxy : m_proxies) {
        std::string name = proxy.substr(0, proxy.find('='));
        if (!config.env_value(name)) environment.push_back(proxy);
    }
    bool has_path = false;
    for (const std::string& entry : environment) has_path = has_path || entry.starts_with("PATH=");
    if (!has_path) environment.push_back(str_cat("PATH=", k_default_path));
    return environment;
}

}  // namespace kiln
