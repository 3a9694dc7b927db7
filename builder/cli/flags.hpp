#pragma once
// Kaniko's executor flags, spelled as Kaniko spells them, in "--flag value" and "--flag=value" forms.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "builder/options.hpp"
#include "builder/warm.hpp"
#include "common/error.hpp"

namespace kiln {

// Parses the arguments after the subcommand. Unknown flags, missing values and Kaniko flags whose meaning kiln
// does not provide yet (and that would change the result if ignored) are errors; Kaniko flags that only tune
// performance are accepted with a warning.
Result<BuildOptions> parse_build_flags(const std::vector<std::string>& args);

// A variable of kiln's environment; nullopt when unset.
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view)>;
// As above, with Kaniko's environment variables read from `environment`: KANIKO_REGISTRY_MIRROR,
// KANIKO_REGISTRY_MAP, KANIKO_NO_PUSH and KANIKO_DIR.
Result<BuildOptions> parse_build_flags(const std::vector<std::string>& args, const EnvironmentLookup& environment);

// A heading of `kiln build --help` and the flags under it, in order.
struct FlagGroup {
    std::string_view title;
    std::vector<std::string_view> flags;
};
// The groups of `kiln build --help`: every flag with help text is in exactly one.
const std::vector<FlagGroup>& build_flag_groups();

// The help text for `kiln build`: the flags by group, then the Kaniko flags accepted with no effect and those
// refused, each with the reason.
std::string build_usage();

// `kiln warm`'s flags: Kaniko warmer's (--image/-i, --dockerfile/-d, --force/-f, --cache-dir/-c, --build-arg,
// --custom-platform) and the build's registry, TLS, credential and mirror flags.
Result<WarmOptions> parse_warm_flags(const std::vector<std::string>& args);
std::string warm_usage();

}  // namespace kiln
