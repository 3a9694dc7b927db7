#pragma once
// The values of kiln's flags: booleans, KEY=VALUE pairs and numbers as Kaniko accepts them, and the functions
// that store one flag's value in BuildOptions. Errors name the flag and quote the value.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/options.hpp"
#include "common/error.hpp"

namespace kiln {

// Stores one flag's value in the options.
using Apply = std::function<Status(BuildOptions&, const std::string&)>;

// "true", "1" or "" (a bare boolean flag) are true; "false" and "0" false.
Result<bool> parse_bool(std::string_view flag, const std::string& value);
// KEY=VALUE; a bare KEY has an empty value.
Result<std::pair<std::string, std::string>> parse_key_value(std::string_view flag, const std::string& value);
// A whole number, possibly negative, of at most a million.
Result<int> parse_int(std::string_view flag, const std::string& value);
// A Go duration ("90m", "1h30m"), zero only when `zero_allowed`; the error says "expected <expected>".
Result<std::chrono::nanoseconds> parse_duration(std::string_view flag, const std::string& value, bool zero_allowed,
                                                std::string_view expected);

Apply set_string(std::string BuildOptions::*member);
Apply append_string(std::vector<std::string> BuildOptions::*member);
Apply set_bool(bool BuildOptions::*member, std::string_view flag);
// A boolean inside a group of options: set_nested_bool(&BuildOptions::push, &RegistryAccess::plain_http, …).
template <class Group>
Apply set_nested_bool(Group BuildOptions::*group, bool Group::*member, std::string_view flag) {
    return [=](BuildOptions& options, const std::string& value) -> Status {
        KILN_ASSIGN((options.*group).*member, parse_bool(flag, value));
        return {};
    };
}

// --build-arg NAME=VALUE, or a bare NAME that takes its value from kiln's environment (as Kaniko and docker).
Status apply_build_arg(BuildOptions& options, const std::string& value);
Status apply_verbosity(BuildOptions& options, const std::string& value);
Status apply_compression(BuildOptions& options, const std::string& value);
Status apply_snapshot_mode(BuildOptions& options, const std::string& value);
Status apply_snapshotter(BuildOptions& options, const std::string& value);
Status apply_log_format(BuildOptions& options, const std::string& value);
Status apply_ignore_path(BuildOptions& options, const std::string& value);
Status apply_format(BuildOptions& options, const std::string& value);

}  // namespace kiln
