#include "dockerfile-parser/flags.hpp"

#include "common/strings.hpp"

namespace kiln::dockerfile::detail {

void InstructionFlags::define(std::string name, Kind kind) { m_flags[std::move(name)] = Flag{kind}; }

Status InstructionFlags::parse(const std::vector<std::string>& flags) {
    for (const std::string& text : flags) {
        if (text == "--") break;  // the end of the options (POSIX utility syntax)
        if (!text.starts_with("--")) return fail(str_cat("arg should start with -- : ", text));
        std::string_view body = std::string_view(text).substr(2);
        size_t equals = body.find('=');
        bool has_value = equals != std::string_view::npos;
        std::string_view name = body.substr(0, equals);
        std::string_view value = has_value ? body.substr(equals + 1) : std::string_view();
        auto found = m_flags.find(name);
        if (found == m_flags.end()) return fail(str_cat("unknown flag: --", name));
        Flag& flag = found->second;
        if (flag.seen && flag.kind != Kind::list) return fail(str_cat("duplicate flag specified: --", name));
        flag.seen = true;
        switch (flag.kind) {
            case Kind::boolean: {
                if (has_value && value.empty()) return fail(str_cat("missing a value on flag: --", name));
                std::string lower = to_lower(value);
                if (lower == "true" || lower.empty())
                    flag.value = "true";
                else if (lower == "false")
                    flag.value = "false";
                else
                    return fail(str_cat("expecting boolean value for flag --", name, ", not: ", value));
                break;
            }
            case Kind::string:
                if (!has_value) return fail(str_cat("missing a value on flag: --", name));
                flag.value = std::string(value);
                break;
            case Kind::list:
                if (!has_value) return fail(str_cat("missing a value on flag: --", name));
                flag.values.emplace_back(value);
                break;
        }
    }
    return {};
}

bool InstructionFlags::boolean(std::string_view name) const {
    auto found = m_flags.find(name);
    return found != m_flags.end() && found->second.value == "true";
}

std::string InstructionFlags::string(std::string_view name) const {
    auto found = m_flags.find(name);
    return found == m_flags.end() ? std::string() : found->second.value;
}

std::vector<std::string> InstructionFlags::list(std::string_view name) const {
    auto found = m_flags.find(name);
    return found == m_flags.end() ? std::vector<std::string>() : found->second.values;
}

}  // namespace kiln::dockerfile::detail
