#pragma once
// The JSON ("exec") form of RUN/CMD/ENTRYPOINT/SHELL/COPY/ADD/VOLUME arguments, decoded the way Go's
// encoding/json decodes into []interface{}: strict JSON, invalid UTF-8 and lone surrogates become U+FFFD.
// Internal to kiln_dockerfile.

#include <string>
#include <string_view>
#include <vector>

namespace kiln::dockerfile {

enum class JsonArrayStatus {
    strings,      // a valid JSON array of strings: `elements` holds them decoded
    not_json,     // not a JSON document (or not an array): the caller falls back to the shell form
    not_strings,  // valid JSON array with a non-string element: an error in a Dockerfile
};

// Parses `text` (which the caller has already checked starts with '[').
JsonArrayStatus parse_json_string_array(std::string_view text, std::vector<std::string>& elements);

}  // namespace kiln::dockerfile
