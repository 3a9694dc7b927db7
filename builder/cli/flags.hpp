#pragma once
// Kaniko's executor flags, spelled as Kaniko spells them, in "--flag value" and "--flag=value" forms.

#include <string>
#include <vector>

#include "builder/options.hpp"
#include "common/error.hpp"

namespace kiln {

// Parses the arguments after the subcommand. Unknown flags, missing values and Kaniko flags whose meaning kiln
// does not provide yet (and that would change the result if ignored) are errors; Kaniko flags that only tune
// performance are accepted with a warning.
Result<BuildOptions> parse_build_flags(const std::vector<std::string>& args);

// The help text for `kiln build`.
std::string build_usage();

}  // namespace kiln
