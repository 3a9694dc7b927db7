#include "builder/cli/flags.hpp"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <functional>
#include <string_view>

#include "builder/cli/flag_table.hpp"
#include "builder/cli/flag_values.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

std::string usage_line(const FlagSpec& spec) {
    std::string names = spec.short_name ? str_cat("-", spec.short_name, ", --", spec.name) : str_cat("    --", spec.name);
    if (spec.kind == FlagKind::value) names += " VALUE";
    return str_cat("  ", names, std::string(names.size() < 40 ? 40 - names.size() : 1, ' '), spec.help, "\n");
}

const FlagSpec* find_flag(std::string_view name, bool is_short) {
    for (const FlagSpec& spec : flag_specs()) {
        if (is_short ? (name.size() == 1 && spec.short_name == name[0]) : spec.name == name) return &spec;
    }
    return nullptr;
}

// Parses `args` against `specs`, with `ignored` and `refused` Kaniko flags; `command` names the command in
// errors ("kiln build"). `apply` stores one known flag's value.
template <class Apply>
Status parse_flags(const std::vector<std::string>& args, std::string_view command,
                   const std::function<const FlagSpec*(std::string_view, bool)>& find,
                   const std::vector<IgnoredFlag>& ignored, const std::vector<RefusedFlag>& refused,
                   const Apply& apply) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        bool is_short = arg.size() >= 2 && arg[0] == '-' && arg[1] != '-';
        if (!arg.starts_with("--") && !is_short)
            return fail(str_cat("unexpected argument \"", arg, "\": ", command, " takes only flags (see ", command,
                                " --help)"));
        std::string body = arg.substr(is_short ? 1 : 2);
        std::string name = body;
        std::optional<std::string> inline_value;
        if (size_t equals = body.find('='); equals != std::string::npos) {
            name = body.substr(0, equals);
            inline_value = body.substr(equals + 1);
        } else if (is_short && body.size() > 1) {
            // -cDIR, as cobra accepts.
            name = body.substr(0, 1);
            inline_value = body.substr(1);
        }
        std::string display = str_cat(is_short ? "-" : "--", name);

        if (const FlagSpec* spec = find(name, is_short)) {
            std::string value;
            if (inline_value) {
                value = *inline_value;
            } else if (spec->kind == FlagKind::boolean) {
                value = "true";
            } else {
                if (i + 1 >= args.size()) return fail(str_cat(display, " needs a value"));
                value = args[++i];
            }
            if (Status applied = apply(*spec, value); !applied) {
                // A message that names its flag already is not prefixed again.
                std::string message = applied.error().message();
                if (message.starts_with(str_cat("--", spec->name, ":"))) return applied;
                return fail(std::move(applied.error()).context(display));
            }
            continue;
        }
        bool handled = false;
        for (const IgnoredFlag& flag : ignored) {
            if (is_short || flag.name != name) continue;
            if (!inline_value && flag.kind == FlagKind::value) {
                if (i + 1 >= args.size()) return fail(str_cat(display, " needs a value"));
                ++i;
            }
            log_warn(display, " is accepted but has no effect: ", flag.why);
            handled = true;
        }
        if (handled) continue;
        for (const RefusedFlag& flag : refused) {
            if (!is_short && flag.name == name) return fail(str_cat(display, ": ", flag.why));
        }
        return fail(str_cat("unknown flag ", display, " (see ", command, " --help)"));
    }
    return {};
}

// `kiln warm` takes the build's registry, TLS, credential and mirror flags, and these of its own.
const std::vector<std::string_view>& shared_warm_flags() {
    static const std::vector<std::string_view> names = {
        "cache-dir", "build-arg", "custom-platform", "insecure", "insecure-pull", "insecure-registry",
        "skip-tls-verify", "skip-tls-verify-pull", "skip-tls-verify-registry", "registry-certificate",
        "registry-client-cert", "registry-mirror", "registry-map", "skip-default-registry-fallback",
        "transfer-jobs", "registry-stall-timeout", "min-transfer-rate", "transfer-deadline",
        "registry-retry-window", "image-download-retry", "verbosity", "log-timestamp", "log-format", "progress", "cache-dir-max",
        "customPlatform"};
    return names;
}

// Kaniko's warmer spells some short flags differently from its executor.
const std::vector<FlagSpec>& warm_only_flags() {
    static const std::vector<FlagSpec> specs = {
        {"image", 'i', FlagKind::value, nullptr, "image to warm (repeatable)"},
        {"dockerfile", 'd', FlagKind::value, nullptr, "warm every image this Dockerfile's FROM lines name"},
        {"force", 'f', FlagKind::boolean, nullptr,
         "fetch again what is already warm (every tag is resolved anew in any case)"},
        {"extract", 0, FlagKind::boolean, nullptr,
         "also extract every layer into --cache-dir's extracted/ folder, which builds with the overlay snapshotter "
         "stack as they are"},
        {"cache-dir", 'c', FlagKind::value, set_string(&BuildOptions::cache_dir),
         "directory kept across builds; images go to its images/ folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/kiln)"},
    };
    return specs;
}

const FlagSpec* find_warm_flag(std::string_view name, bool is_short) {
    for (const FlagSpec& spec : warm_only_flags())
        if (is_short ? (name.size() == 1 && spec.short_name == name[0]) : spec.name == name) return &spec;
    if (is_short) return nullptr;
    for (std::string_view shared : shared_warm_flags())
        if (shared == name) return find_flag(name, false);
    return nullptr;
}

// Kaniko's environment variables, read after the flags as Kaniko reads them: KANIKO_REGISTRY_MIRROR adds
// mirrors (comma-separated) after --registry-mirror's, KANIKO_REGISTRY_MAP adds maps, KANIKO_NO_PUSH
// overrides --no-push, and KANIKO_DIR is the work directory unless --kaniko-dir/--work-dir names one.
Status apply_kaniko_environment(BuildOptions& options, const EnvironmentLookup& environment) {
    if (auto mirrors = environment("KANIKO_REGISTRY_MIRROR")) {
        for (const std::string& mirror : split(*mirrors, ','))
            if (!trim(mirror).empty()) options.registries.mirrors.emplace_back(trim(mirror));
    }
    if (auto maps = environment("KANIKO_REGISTRY_MAP"); maps && !maps->empty()) options.registries.maps.push_back(*maps);
    if (auto no_push = environment("KANIKO_NO_PUSH")) {
        auto value = parse_bool("KANIKO_NO_PUSH", *no_push);
        if (!value) return fail(std::move(value.error()).context("the environment variable KANIKO_NO_PUSH"));
        options.no_push = *value;
    }
    if (auto dir = environment("KANIKO_DIR"); dir && !dir->empty() && options.work_dir_parent.empty())
        options.work_dir_parent = *dir;
    return {};
}

// The work and cache directories reach the sandbox and overlay mounts, which take absolute paths only: a
// relative one is taken from the current directory.
Status make_absolute(std::string& path) {
    if (path.empty() || path.front() == '/') return {};
    std::string cwd(PATH_MAX, '\0');
    if (!::getcwd(cwd.data(), cwd.size())) return fail_errno("getcwd");
    path = str_cat(cwd.c_str(), "/", path);
    return {};
}

}  // namespace

Result<BuildOptions> parse_build_flags(const std::vector<std::string>& args) {
    return parse_build_flags(args, [](std::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        return value ? std::optional<std::string>(value) : std::nullopt;
    });
}

Result<BuildOptions> parse_build_flags(const std::vector<std::string>& args, const EnvironmentLookup& environment) {
    BuildOptions options;
    KILN_TRY(parse_flags(args, "kiln build", find_flag, ignored_flags(), refused_flags(),
                         [&](const FlagSpec& spec, const std::string& value) { return spec.apply(options, value); }));
    KILN_TRY(apply_kaniko_environment(options, environment));
    KILN_TRY(make_absolute(options.work_dir_parent));
    KILN_TRY(make_absolute(options.cache_dir));
    if (options.destinations.empty() && !options.no_push)
        return fail("no --destination given: name where to push the image, or pass --no-push");
    if (!options.image_name_with_digest_file.empty() && options.destinations.empty())
        return fail("--image-name-with-digest-file needs at least one --destination");
    if (!options.image_ref_file.empty() && options.destinations.empty())
        return fail("--image-ref-file needs at least one --destination");
    if (!options.summary_file.empty() && options.summary_file == options.trace_file)
        return fail("--summary-file and --trace-file name the same file");
    return options;
}

Result<WarmOptions> parse_warm_flags(const std::vector<std::string>& args) {
    WarmOptions options;
    options.settings.dockerfile.clear();
    KILN_TRY(parse_flags(args, "kiln warm", find_warm_flag, {}, {},
                         [&](const FlagSpec& spec, const std::string& value) -> Status {
                             if (spec.name == "image") {
                                 options.images.push_back(value);
                             } else if (spec.name == "dockerfile") {
                                 options.settings.dockerfile = value;
                             } else if (spec.name == "force") {
                                 KILN_ASSIGN(options.force, parse_bool("force", value));
                             } else if (spec.name == "extract") {
                                 KILN_ASSIGN(options.extract, parse_bool("extract", value));
                             } else {
                                 return spec.apply(options.settings, value);
                             }
                             return {};
                         }));
    if (options.images.empty() && options.settings.dockerfile.empty())
        return fail("nothing to warm: name images with --image, or a Dockerfile with --dockerfile");
    KILN_TRY(make_absolute(options.settings.cache_dir));
    return options;
}

std::string warm_usage() {
    std::string usage =
        "Usage: kiln warm [flags]\n"
        "       warmer [flags]          (Kaniko warmer compatibility)\n\n"
        "Fetches base images into --cache-dir, verified, so that builds take them from there and still build\n"
        "when the registry cannot be reached.\n\nFlags:\n";
    std::vector<const FlagSpec*> specs;
    for (const FlagSpec& spec : warm_only_flags()) specs.push_back(&spec);
    for (std::string_view name : shared_warm_flags())
        if (name != "cache-dir")
            if (const FlagSpec* spec = find_flag(name, false); spec && !spec->help.empty()) specs.push_back(spec);
    for (const FlagSpec* spec : specs) usage += usage_line(*spec);
    return usage;
}

const std::vector<FlagGroup>& build_flag_groups() {
    static const std::vector<FlagGroup> groups = {
        {"Context and sources", {"context", "git", "context-sub-path", "build-context"}},
        {"Dockerfile, arguments and target", {"dockerfile", "build-arg", "target", "label", "custom-platform"}},
        {"Registries, credentials, TLS and mirrors",
         {"insecure", "insecure-pull", "insecure-registry", "skip-tls-verify", "skip-tls-verify-pull",
          "skip-tls-verify-registry", "registry-certificate", "registry-client-cert", "registry-mirror",
          "registry-map", "skip-default-registry-fallback", "skip-push-permission-check", "image-download-retry",
          "push-retry", "transfer-jobs", "registry-stall-timeout", "min-transfer-rate", "transfer-deadline",
          "registry-retry-window", "max-download-size"}},
        {"Push, destinations and outputs",
         {"destination", "no-push", "tar-path", "oci-layout-path", "digest-file", "image-name-with-digest-file",
          "image-name-tag-with-digest-file", "image-url-file", "image-ref-file", "push-ignore-immutable-tag-errors"}},
        {"Caching",
         {"cache", "cache-repo", "no-push-cache", "cache-dir", "cache-dir-max", "cache-ttl", "cache-run-layers",
          "cache-copy-layers"}},
        {"Snapshotting", {"snapshotter", "snapshot-mode", "single-snapshot", "force-build-metadata", "ignore-path", "ignore-var-run"}},
        {"Compression and reproducibility", {"compression", "compression-level", "format", "reproducible"}},
        {"RUN steps", {"sandbox", "run-network", "secret"}},
        {"Work directory and memory", {"work-dir", "kaniko-dir", "memory-budget", "cleanup", "keep-work-dir"}},
        {"Logging and output",
         {"verbosity", "log-format", "log-timestamp", "progress", "summary-file", "trace-file"}},
    };
    return groups;
}

std::string build_usage() {
    std::string usage =
        "Usage: kiln build [flags]\n"
        "       kiln [flags]            (Kaniko executor compatibility)\n\n"
        "Builds an image from a Dockerfile and pushes it, or writes it locally with --no-push. The flags are\n"
        "Kaniko's executor flags, grouped as Kaniko's documentation groups them, and kiln's own.\n";
    for (const FlagGroup& group : build_flag_groups()) {
        usage += str_cat("\n", group.title, ":\n");
        for (std::string_view name : group.flags)
            if (const FlagSpec* spec = find_flag(name, false)) usage += usage_line(*spec);
    }
    usage += "\nKaniko flags accepted with no effect, and why:\n";
    for (const IgnoredFlag& flag : ignored_flags()) {
        std::string name = str_cat("    --", flag.name);
        usage += str_cat("  ", name, std::string(name.size() < 40 ? 40 - name.size() : 1, ' '), flag.why, "\n");
    }
    usage += "\nKaniko flags refused, and why:\n";
    for (const RefusedFlag& flag : refused_flags()) {
        std::string name = str_cat("    --", flag.name);
        usage += str_cat("  ", name, std::string(name.size() < 40 ? 40 - name.size() : 1, ' '), flag.why, "\n");
    }
    return usage;
}

}  // namespace kiln
