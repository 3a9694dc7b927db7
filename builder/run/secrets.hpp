#pragma once
// Build secrets (--secret): where a secret's value comes from, and reading it for the one RUN step that
// mounts it. A value is only ever held in memory and handed to the sandbox; nothing here logs it or puts it
// in an error message.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/options.hpp"
#include "common/error.hpp"

namespace kiln {

// The most a secret may hold, as in BuildKit.
inline constexpr size_t k_max_secret_size = 500 * 1024;

// Parses a --secret value as docker build does: "id=ID,src=PATH" (also source=), "id=ID,env=VAR",
// "type=env,id=ID,src=VAR", or "id=ID" alone, which reads the environment variable ID. Without an id, the
// file's base name is the id.
Result<SecretSource> parse_secret_flag(const std::string& value);

// The last source given for `id`, or nullopt when no --secret names it.
std::optional<SecretSource> find_secret(const std::vector<SecretSource>& secrets, const std::string& id);

// An environment variable of kiln's own, as the CLI read it; nullopt when unset.
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view)>;

// The secret's value: the file's bytes, or the environment variable's value. Errors name the id and the file
// or variable, never the value.
Result<std::string> read_secret(const SecretSource& source, const EnvironmentLookup& environment);

}  // namespace kiln
