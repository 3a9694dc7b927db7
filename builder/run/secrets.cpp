#include "builder/run/secrets.hpp"

#include <cstdlib>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln {

Result<SecretSource> parse_secret_flag(const std::string& value) {
    SecretSource source;
    std::string type = "file";
    std::string src;
    for (const std::string& field : split(value, ',')) {
        size_t equals = field.find('=');
        if (equals == std::string::npos)
            return fail(str_cat("invalid field '", field, "' must be a key=value pair"));
        std::string key = to_lower(std::string_view(field).substr(0, equals));
        std::string text = field.substr(equals + 1);
        if (key == "type") {
            if (text != "file" && text != "env")
                return fail(str_cat("unsupported secret type \"", text, "\" (file, env)"));
            type = text;
        } else if (key == "id") {
            source.id = text;
        } else if (key == "src" || key == "source") {
            src = text;
        } else if (key == "env") {
            source.env = text;
        } else {
            return fail(str_cat("unexpected key '", key, "' in '", field, "' (id, src, env, type)"));
        }
    }
    if (type == "env" && source.env.empty())
        source.env = src;
    else
        source.file = src;
    if (source.id.empty() && !source.file.empty()) {
        size_t slash = source.file.rfind('/');
        source.id = slash == std::string::npos ? source.file : source.file.substr(slash + 1);
    }
    if (source.id.empty())
        return fail(str_cat("\"", value, "\" names no id: use id=ID,src=PATH or id=ID,env=VAR"));
    if (source.file.empty() && source.env.empty()) source.env = source.id;
    return source;
}

std::optional<SecretSource> find_secret(const std::vector<SecretSource>& secrets, const std::string& id) {
    std::optional<SecretSource> found;
    for (const SecretSource& secret : secrets)
        if (secret.id == id) found = secret;
    return found;
}

Result<std::string> read_secret(const SecretSource& source, const EnvironmentLookup& environment) {
    if (!source.file.empty()) {
        auto value = read_file(source.file, k_max_secret_size);
        if (!value) return fail(std::move(value).error().context(str_cat("secret ", source.id)));
        return value;
    }
    std::optional<std::string> value = environment(source.env);
    if (!value)
        return fail(str_cat("secret ", source.id, ": the environment variable ", source.env, " is not set"));
    std::string text = std::move(*value);
    if (text.size() > k_max_secret_size)
        return fail(str_cat("secret ", source.id, ": $", source.env, " holds more than ", k_max_secret_size,
                            " bytes"));
    return text;
}

}  // namespace kiln
