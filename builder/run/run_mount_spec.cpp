#include "builder/run/run_mount_spec.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/strings.hpp"

namespace kiln {
namespace {

// One CSV record as Go's encoding/csv reads it: quoted fields may hold commas, and "" is a quote inside them.
Result<std::vector<std::string>> csv_fields(std::string_view text) {
    std::vector<std::string> fields;
    size_t pos = 0;
    while (true) {
        std::string field;
        if (pos < text.size() && text[pos] == '"') {
            ++pos;
            while (true) {
                if (pos >= text.size())
                    return fail("failed to parse csv mounts: extraneous or missing \" in quoted-field");
                if (text[pos] == '"') {
                    if (pos + 1 < text.size() && text[pos + 1] == '"') {
                        field += '"';
                        pos += 2;
                        continue;
                    }
                    ++pos;
                    break;
                }
                field += text[pos++];
            }
            if (pos < text.size() && text[pos] != ',')
                return fail("failed to parse csv mounts: extraneous or missing \" in quoted-field");
        } else {
            size_t comma = text.find(',', pos);
            std::string_view raw =
                text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            if (raw.find('"') != std::string_view::npos)
                return fail("failed to parse csv mounts: bare \" in non-quoted-field");
            field = raw;
            pos += raw.size();
        }
        fields.push_back(std::move(field));
        if (pos >= text.size()) return fields;
        ++pos;  // the comma
    }
}

// Go's strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view text) {
    for (std::string_view yes : {"1", "t", "T", "TRUE", "true", "True"})
        if (text == yes) return true;
    for (std::string_view no : {"0", "f", "F", "FALSE", "false", "False"})
        if (text == no) return false;
    return std::nullopt;
}

// strconv.ParseUint(text, base, 32) for base 8 or 10.
std::optional<std::uint32_t> parse_u32(std::string_view text, unsigned base) {
    if (text.empty()) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c >= static_cast<char>('0' + base)) return std::nullopt;
        value = value * base + static_cast<std::uint64_t>(c - '0');
        if (value > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
    }
    return static_cast<std::uint32_t>(value);
}

// go-units RAMInBytes: "64m", "1.5GiB", "1024", binary multipliers.
std::optional<std::uint64_t> parse_ram_bytes(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size() && ((text[pos] >= '0' && text[pos] <= '9') || text[pos] == '.')) ++pos;
    std::string number(text.substr(0, pos));
    if (number.empty() || number[0] == '.' || number.back() == '.' || number.find("..") != std::string::npos)
        return std::nullopt;
    if (number.find('.') != number.rfind('.')) return std::nullopt;  // "1.2.3": ParseFloat refuses it
    std::string_view unit = text.substr(pos);
    if (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
    double multiplier = 1;
    if (!unit.empty()) {
        std::string_view letters = "kmgtp";
        size_t found = letters.find(static_cast<char>(std::tolower(static_cast<unsigned char>(unit[0]))));
        if (found != std::string_view::npos) {
            multiplier = std::pow(1024.0, static_cast<double>(found + 1));
            unit.remove_prefix(1);
        }
    }
    if (!unit.empty() && (unit[0] == 'i' || unit[0] == 'I')) unit.remove_prefix(1);
    if (!unit.empty() && (unit[0] == 'b' || unit[0] == 'B')) unit.remove_prefix(1);
    if (!unit.empty()) return std::nullopt;
    double bytes = std::strtod(number.c_str(), nullptr) * multiplier;
    if (!(bytes < 9.2e18)) return std::nullopt;
    return static_cast<std::uint64_t>(bytes);
}

bool takes_required(RunMountType type) {
    return type == RunMountType::secret || type == RunMountType::ssh;
}

std::optional<RunMountType> mount_type_named(std::string_view name) {
    for (RunMountType type : {RunMountType::bind, RunMountType::cache, RunMountType::tmpfs,
                              RunMountType::secret, RunMountType::ssh})
        if (name == run_mount_type_name(type)) return type;
    return std::nullopt;
}

Status validate(RunMountRequest& mount, bool read_only_by_default) {
    bool file_info = mount.type == RunMountType::secret || mount.type == RunMountType::ssh ||
                     mount.type == RunMountType::cache;
    std::string type = str_cat("\"", run_mount_type_name(mount.type), "\"");
    if (!file_info && mount.mode) return fail(str_cat("mode not allowed for ", type, " type mounts"));
    if (!file_info && mount.uid) return fail(str_cat("uid not allowed for ", type, " type mounts"));
    if (!file_info && mount.gid) return fail(str_cat("gid not allowed for ", type, " type mounts"));
    if (read_only_by_default)
        mount.read_only = mount.type != RunMountType::cache && mount.type != RunMountType::tmpfs;
    if (mount.type == RunMountType::secret) {
        if (!mount.from.empty()) return fail("secret mount should not have a from");
        if (mount.sharing) return fail("secret mount should not define sharing");
        if (mount.source.empty() && mount.target.empty() && mount.id.empty())
            return fail("invalid secret mount. one of source, target required");
        if (!mount.source.empty() && !mount.id.empty()) return fail("both source and id can't be set");
    }
    if (mount.sharing && mount.type != RunMountType::cache)
        return fail(str_cat("invalid cache sharing set for ", run_mount_type_name(mount.type), " mount"));
    return {};
}

}  // namespace

const char* run_mount_type_name(RunMountType type) {
    switch (type) {
        case RunMountType::bind:
            return "bind";
        case RunMountType::cache:
            return "cache";
        case RunMountType::tmpfs:
            return "tmpfs";
        case RunMountType::secret:
            return "secret";
        case RunMountType::ssh:
            return "ssh";
    }
    return "?";
}

Result<RunMountRequest> parse_run_mount(std::string_view value, const MountValueExpander& expand) {
    KILN_ASSIGN(std::vector<std::string> fields, csv_fields(value));
    RunMountRequest mount;
    bool read_only_by_default = true;
    for (const std::string& field : fields) {
        size_t equals = field.find('=');
        std::string key = to_lower(std::string_view(field).substr(0, equals));
        if (equals == std::string::npos) {
            if (key == "readonly" || key == "ro") {
                mount.read_only = true;
            } else if (key == "readwrite" || key == "rw") {
                mount.read_only = false;
            } else if (key == "required" && takes_required(mount.type)) {
                mount.required = true;
                continue;
            } else if (key == "required") {
                return fail(str_cat("unexpected key '", key, "' for mount type '",
                                    run_mount_type_name(mount.type), "'"));
            } else {
                return fail(str_cat("invalid field '", field, "' must be a key=value pair"));
            }
            read_only_by_default = false;
            continue;
        }
        std::string raw = field.substr(equals + 1);
        if (key == "from") {
            size_t dollar = raw.find('$');
            if (dollar != std::string::npos && dollar + 1 != raw.size())
                return fail("'from' doesn't support variable expansion, define alias stage instead");
        }
        KILN_ASSIGN(std::string text, expand(raw));
        auto invalid = [&] { return fail(str_cat("invalid value for ", key, ": ", text)); };
        auto unexpected = [&] {
            return fail(
                str_cat("unexpected key '", key, "' for mount type '", run_mount_type_name(mount.type), "'"));
        };
        if (key == "type") {
            auto type = mount_type_named(to_lower(text));
            if (!type)
                return fail(
                    str_cat("unsupported mount type \"", text, "\" (bind, cache, tmpfs, secret, ssh)"));
            mount.type = *type;
        } else if (key == "from") {
            mount.from = text;
        } else if (key == "source" || key == "src") {
            mount.source = text;
        } else if (key == "target" || key == "dst" || key == "destination") {
            mount.target = text;
        } else if (key == "readonly" || key == "ro" || key == "readwrite" || key == "rw") {
            auto flag = parse_go_bool(text);
            if (!flag) return invalid();
            bool writable_key = key == "readwrite" || key == "rw";
            mount.read_only = writable_key ? !*flag : *flag;
            read_only_by_default = false;
        } else if (key == "required") {
            if (!takes_required(mount.type)) return unexpected();
            auto flag = parse_go_bool(text);
            if (!flag) return invalid();
            mount.required = *flag;
        } else if (key == "size") {
            if (mount.type != RunMountType::tmpfs) return unexpected();
            mount.size = parse_ram_bytes(text);
            if (!mount.size) return invalid();
        } else if (key == "id") {
            mount.id = text;
        } else if (key == "sharing") {
            std::string lower = to_lower(text);
            if (lower == "shared")
                mount.sharing = CacheSharing::shared;
            else if (lower == "private")
                mount.sharing = CacheSharing::unshared;
            else if (lower == "locked")
                mount.sharing = CacheSharing::locked;
            else
                return fail(str_cat("unsupported sharing value \"", text, "\" (shared, private, locked)"));
        } else if (key == "mode" || key == "uid" || key == "gid") {
            auto number = parse_u32(text, key == "mode" ? 8 : 10);
            if (!number) return fail(str_cat("invalid value ", text, " for ", key));
            (key == "mode" ? mount.mode : key == "uid" ? mount.uid : mount.gid) = *number;
        } else if (key == "env") {
            mount.env = text;
        } else {
            return fail(str_cat("unexpected key '", key, "' in '", field, "'"));
        }
    }
    KILN_TRY(validate(mount, read_only_by_default));
    return mount;
}

std::vector<std::string> run_mount_sources(const dockerfile::RunInstruction& run) {
    std::vector<std::string> sources;
    for (const std::string& value : run.mounts) {
        auto fields = csv_fields(value);
        if (!fields) continue;  // reported when the RUN is dispatched
        std::string type = "bind";
        std::string from;
        for (const std::string& field : *fields) {
            size_t equals = field.find('=');
            if (equals == std::string::npos) continue;
            std::string key = to_lower(std::string_view(field).substr(0, equals));
            if (key == "type") type = to_lower(std::string_view(field).substr(equals + 1));
            if (key == "from") from = field.substr(equals + 1);
        }
        if (!from.empty() && (type == "bind" || type == "cache")) sources.push_back(from);
    }
    return sources;
}

}  // namespace kiln
