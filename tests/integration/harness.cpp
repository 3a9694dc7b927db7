#include "tests/integration/harness.hpp"

#include <chrono>
#include <filesystem>
#include <thread>

#include <dirent.h>
#include <unistd.h>

#include <thread>

#include "common/files.hpp"
#include "common/strings.hpp"

namespace kiln::test {

std::string kiln_binary() { return KILN_BINARY_DIR "/bin/kiln"; }

std::string source_path(const std::string& relative) { return std::string(KILN_SOURCE_DIR) + "/" + relative; }

namespace {

// Whether a kiln that keeps extracted layers in the background (extracted_layer_store.hpp) is still at work.
bool layer_keeper_running() {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
        auto cmdline = read_file(entry.path().string() + "/cmdline", 1 << 16);
        if (cmdline && cmdline->find("internal-keep-layers") != std::string::npos) return true;
    }
    return false;
}

}  // namespace

KilnRun run_kiln(const std::vector<std::string>& args, const std::vector<std::string>& prefix,
                 const std::vector<std::string>& environment) {
    std::vector<std::string> argv = prefix;
    argv.push_back(kiln_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessOptions options;
    options.environment = environment;
    auto result = run_process(argv, options);
    if (!result) return KilnRun{-1, result.error().message()};
    KilnRun run{result->exit_code, result->stdout_bytes + result->stderr_bytes};
    // A build that left a keeper writing into the test's --cache-dir: the test's directory goes only once the
    // keeper is done (any keeper: tests running beside this one cost a short wait).
    if (run.output.find("in the background") != std::string::npos) {
        for (int i = 0; i < 1200 && layer_keeper_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return run;
}

std::optional<std::string> missing_tools() {
    if (auto reason = RegistryProcess::unavailable_reason()) return reason;
    for (const char* tool : {"/usr/bin/skopeo", "/usr/bin/umoci", "/bin/busybox"})
        if (::access(tool, X_OK) != 0) return str_cat(tool, " is not installed (scripts/setup installs it)");
    if (::access(kiln_binary().c_str(), X_OK) != 0) return str_cat(kiln_binary(), " has not been built");
    return std::nullopt;
}

namespace {

Result<std::string> run_tool(const std::vector<std::string>& argv) {
    KILN_ASSIGN(ProcessResult result, run_process(argv));
    if (result.exit_code != 0)
        return fail(str_cat(join(argv, " "), " exited with ", result.exit_code, ": ", result.stderr_bytes));
    return result.stdout_bytes;
}

}  // namespace

Status pull_to_layout(const std::string& reference, const std::string& layout, const std::string& tag) {
    KILN_TRY(run_tool({"skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + reference,
                       "oci:" + layout + ":" + tag}));
    return {};
}

Status unpack_layout(const std::string& layout, const std::string& tag, const std::string& bundle) {
    KILN_TRY(run_tool({"umoci", "unpack", "--image", layout + ":" + tag, bundle}));
    return {};
}

Result<nlohmann::json> inspect_remote(const std::string& reference, bool config) {
    std::vector<std::string> argv = {"skopeo", "inspect", "--tls-verify=false"};
    // --raw: the config exactly as pushed (without it skopeo re-parses it as OCI and drops Docker's fields,
    // such as Healthcheck, OnBuild and Shell).
    if (config) {
        argv.push_back("--config");
        argv.push_back("--raw");
    }
    argv.push_back("docker://" + reference);
    KILN_ASSIGN(std::string output, run_tool(argv));
    nlohmann::json json = nlohmann::json::parse(output, nullptr, false);
    if (json.is_discarded()) return fail("skopeo inspect printed no JSON: " + output);
    return json;
}

std::optional<struct stat> lstat_path(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
    return st;
}

Result<std::string> push_busybox_base(const RegistryProcess& registry, const std::string& work_dir) {
    std::string context = work_dir + "/busybox-context";
    KILN_TRY(run_tool({source_path("scripts/make-busybox-context"), context}));
    std::string reference = registry.host_port() + "/base/busybox:1";
    KilnRun run = run_kiln({"build", "--context", context, "--dockerfile", source_path("examples/busybox-base/Dockerfile"),
                            "--destination", reference, "--insecure"});
    if (run.exit_code != 0) return fail("building the busybox base failed: " + run.output);
    return reference;
}

size_t mount_count() {
    auto mounts = read_file("/proc/self/mountinfo");
    return mounts ? split(*mounts, '\n').size() : 0;
}

std::vector<std::string> kiln_entries(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* stream = ::opendir(dir.c_str())) {
        while (dirent* entry = ::readdir(stream))
            if (std::string_view(entry->d_name).starts_with("kiln-")) names.emplace_back(entry->d_name);
        ::closedir(stream);
    }
    return names;
}

std::vector<std::string> wait_for_no_kiln_entries(const std::string& dir, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!kiln_entries(dir).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return kiln_entries(dir);
}

}  // namespace kiln::test
