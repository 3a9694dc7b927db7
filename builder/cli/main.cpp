// The kiln executable: `kiln build [flags]`, or Kaniko's executor form `kiln [flags]`; `kiln warm [flags]`, also
// run as `warmer` (Kaniko's warmer).

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "builder/build.hpp"
#include "builder/build_report.hpp"
#include "builder/cli/log_output.hpp"
#include "builder/cli/progress_display.hpp"
#include "builder/cancellation.hpp"
#include "builder/host.hpp"
#include "builder/cli/flag_values.hpp"
#include "builder/cli/flags.hpp"
#include "builder/sandbox/userns.hpp"
#include "builder/snapshot/extracted_layer_store.hpp"
#include "builder/warm.hpp"
#include "builder/work_dir.hpp"
#include "common/process.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

extern char** environ;

namespace {

constexpr const char* k_version = "0.1.0";

// The CLI reads kiln's environment once; the build is handed the copy.
kiln::HostEnvironment host_environment() {
    kiln::HostEnvironment host;
    for (char** entry = environ; entry && *entry; ++entry) {
        std::string_view text = *entry;
        size_t equals = text.find('=');
        if (equals == std::string_view::npos) continue;
        host.variables.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
    }
    return host;
}

// Inside the user namespace that root's kiln re-executed itself in: the Docker config root opened for it.
void take_handed_docker_config(kiln::HostEnvironment& host) {
    std::optional<std::string> handed = host.variable(kiln::k_handed_file_variable);
    if (!handed || !host.variable(kiln::k_build_userns_marker)) return;
    if (*handed == kiln::k_handed_nothing) {
        host.handed_no_docker_config = true;
        return;
    }
    size_t colon = handed->find(':');
    std::uint64_t fd = 0;
    if (colon == std::string::npos || !kiln::parse_uint64(handed->substr(0, colon), fd) || fd > 65535 ||
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC) != 0)
        return;
    host.handed_docker_config_fd = static_cast<int>(fd);
    host.handed_docker_config_path = handed->substr(colon + 1);
}

// Logs what ended a command (an error record, so that JSON logs have it too); returns `code`.
int report(const kiln::Error& error, int code) {
    kiln::log(kiln::LogLevel::error, error.message());
    return code;
}

// A non-root caller, or root that can neither map host uid 0 nor idmap a mount, continues inside its own user
// namespace, where it is root over a range of ids; this re-executes kiln and returns the child's exit code in
// the parent, nullopt in the child (or when already inside, or where no namespace could be made).
std::optional<int> enter_user_namespace(char** argv, kiln::HostEnvironment& host, kiln::SandboxMode mode) {
    std::vector<std::string> docker_configs = kiln::docker_config_candidates(host.credentials());
    if (auto entered = kiln::enter_build_user_namespace(argv, environ, mode, docker_configs); !entered) {
        // Outside one, kiln still builds what needs no RUN sandbox, with a warning about ownership.
        if (host.variable(kiln::k_build_userns_marker)) return report(entered.error(), 1);
        host.build_user_namespace_error = entered.error().message();
        kiln::log_warn("kiln runs as uid ", ::geteuid(), " without a user namespace of its own (",
                       host.build_user_namespace_error, "): RUN steps cannot run, and files cannot be given other owners");
    } else if (entered->has_value()) {
        return **entered;  // the parent: the child's exit code
    }
    take_handed_docker_config(host);
    return std::nullopt;
}

// Every record goes to `report` (when given), and to stderr as the settings say, through `display` when
// progress is shown.
void install_log_sink(const kiln::LogOutputSettings& settings, kiln::BuildReport* report = nullptr,
                      kiln::ProgressDisplay* display = nullptr) {
    kiln::set_record_sink([settings, report, display](const kiln::LogRecord& record) {
        if (report) report->add(record);
        std::string line = kiln::format_log_record(record, settings);
        if (line.empty()) return;
        if (display)
            display->write_line(line);
        else
            std::fwrite(line.data(), 1, line.size(), stderr);
    });
}

// The progress display --progress asks for; with JSON logs, whose every line is an object, progress objects at
// the plain interval. None when the log shows no info lines (--verbosity=warn).
std::unique_ptr<kiln::ProgressDisplay> progress_display(const kiln::BuildOptions& options) {
    if (options.verbosity > kiln::LogLevel::info) return nullptr;
    if (options.log_format == kiln::LogFormat::json)
        return std::make_unique<kiln::ProgressDisplay>(kiln::ProgressMode::json);
    auto mode = kiln::parse_progress_mode(options.progress, ::isatty(STDERR_FILENO) == 1);
    if (!mode) return nullptr;
    return std::make_unique<kiln::ProgressDisplay>(*mode);
}

kiln::LogOutputSettings log_settings(const kiln::BuildOptions& options) {
    return {.verbosity = options.verbosity, .timestamps = options.log_timestamps, .format = options.log_format};
}

// The end of a build: the summary in the log (then the error, if any), and in --summary-file and --trace-file
// when asked for. Returns the exit code: the build's, or 1 when a file it asked for cannot be written.
int finish_build(const kiln::BuildOptions& options, const kiln::BuildReport& build_report,
                 const kiln::Result<kiln::BuildResult>& result) {
    kiln::BuildOutcome outcome{.succeeded = result.has_value(),
                               .image_digest = result ? result->manifest_digest.str() : "",
                               .error = result ? "" : result.error().message()};
    for (const std::string& line : build_report.summary_lines()) kiln::log(kiln::LogLevel::info, line);
    // The error last, where a reader of the log looks first.
    int code = result ? 0 : report(result.error(), result.error().exit_code());
    if (!options.summary_file.empty()) {
        auto written = kiln::write_json_file(options.summary_file, build_report.summary(outcome), "--summary-file");
        if (!written) code = report(written.error(), code ? code : 1);
    }
    if (!options.trace_file.empty()) {
        auto written = kiln::write_json_file(options.trace_file, build_report.trace(), "--trace-file");
        if (!written) code = report(written.error(), code ? code : 1);
    }
    return code;
}

void print_usage(std::FILE* to) {
    std::fprintf(to,
                 "kiln %s: builds container images from Dockerfiles, without a daemon and without root.\n\n"
                 "Usage:\n"
                 "  kiln build [flags]     build an image (kiln build --help lists the flags)\n"
                 "  kiln [flags]           the same, with Kaniko executor's argument form\n"
                 "  kiln warm [flags]      fetch base images into --cache-dir (kiln warm --help); also run as warmer\n"
                 "  kiln version           print the version\n",
                 k_version);
}

// Prints `usage` when `args` ask for help; true when they did.
bool printed_help(const std::vector<std::string>& args, const std::string& usage) {
    for (const std::string& arg : args) {
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage.c_str(), stdout);
            return true;
        }
    }
    return false;
}

// The log format the flags ask for, read before they are parsed, so that what parsing says (a warning about
// a flag, an error) is already in it: a JSON log is JSON from its first line.
kiln::LogOutputSettings early_log_settings(const std::vector<std::string>& args) {
    kiln::BuildOptions read;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i].starts_with("--log-format="))
            (void)kiln::apply_log_format(read, args[i].substr(std::string_view("--log-format=").size()));
        else if (args[i] == "--log-format" && i + 1 < args.size())
            (void)kiln::apply_log_format(read, args[i + 1]);
    }
    return {.format = read.log_format};
}

int run_build_command(const std::vector<std::string>& args, char** argv) {
    if (printed_help(args, kiln::build_usage())) return 0;
    install_log_sink(early_log_settings(args));
    // The environment is read once: the flags' KANIKO_* variables and the build see the same copy.
    kiln::HostEnvironment host = host_environment();
    auto options = kiln::parse_build_flags(args, [&host](std::string_view name) { return host.variable(name); });
    if (!options) return report(options.error(), 2);
    kiln::BuildReport build_report;
    install_log_sink(log_settings(*options), &build_report);

    if (std::optional<int> parent = enter_user_namespace(argv, host, options->sandbox)) return *parent;

    // Before any thread: kiln's overlay mounts live in a mount namespace of its own and die with it.
    if (auto entered = kiln::enter_private_mount_namespace(); entered) {
        host.private_mount_namespace = true;
    } else {
        host.private_mount_namespace_error = entered.error().message();
    }

    // After the last step that must run before any thread: the thread that waits for SIGTERM and SIGINT.
    kiln::handle_cancellation();
    std::unique_ptr<kiln::ProgressDisplay> display = progress_display(*options);
    install_log_sink(log_settings(*options), &build_report, display.get());
    auto result = kiln::run_build(*options, host);
    int code = finish_build(*options, build_report, result);
    install_log_sink(log_settings(*options), &build_report);
    return code;
}

int run_warm_command(const std::vector<std::string>& args, char** argv) {
    if (printed_help(args, kiln::warm_usage())) return 0;
    install_log_sink(early_log_settings(args));
    auto options = kiln::parse_warm_flags(args);
    if (!options) return report(options.error(), 2);
    install_log_sink(log_settings(options->settings));
    kiln::HostEnvironment host = host_environment();
    // Extracted layers get the owners a build's would, in the user namespace a build would make.
    if (options->extract)
        if (std::optional<int> parent = enter_user_namespace(argv, host, options->settings.sandbox)) return *parent;
    if (auto warmed = kiln::run_warm(*options, host); !warmed)
        return report(warmed.error(), warmed.error().exit_code());
    return 0;
}

// The name kiln was run as, without its directory: "warmer" runs `kiln warm`.
std::string_view program_name(const char* argv0) {
    std::string_view name = argv0 ? argv0 : "";
    if (size_t slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
    return name;
}

}  // namespace

int main(int argc, char** argv) {
    kiln::remember_exec_strings(argv, environ);
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (program_name(argv[0]) == "warmer") return run_warm_command(args, argv);
        if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
            print_usage(args.empty() ? stderr : stdout);
            return args.empty() ? 2 : 0;
        }
        if (args[0] == "version" || args[0] == "--version") {
            std::printf("kiln %s\n", k_version);
            return 0;
        }
        if (args[0] == "build") return run_build_command({args.begin() + 1, args.end()}, argv);
        if (args[0] == kiln::k_remove_work_dir_command && args.size() == 2) return kiln::remove_disposed_work_dir(args[1]);
        if (args[0] == kiln::k_keep_layers_command) return kiln::keep_layers({args.begin() + 1, args.end()});
        if (args[0] == "warm") return run_warm_command({args.begin() + 1, args.end()}, argv);
        if (args[0].starts_with("-")) return run_build_command(args, argv);
        std::fprintf(stderr, "error: unknown command \"%s\"\n\n", args[0].c_str());
        print_usage(stderr);
        return 2;
    } catch (const std::exception& e) {
        kiln::log(kiln::LogLevel::error, std::string("internal error: ") + e.what());
        return 70;
    }
}
