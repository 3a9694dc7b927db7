#include "builder/sources/git_source.hpp"

#include <cerrno>
#include <chrono>
#include <vector>

#include "common/files.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

// A fetch that runs longer is stopped: a build's inputs are bounded in time as in size.
constexpr std::chrono::minutes k_fetch_timeout{30};
constexpr size_t k_output_limit = 1 << 20;

bool is_commit(std::string_view ref) {
    if (ref.size() != 40 && ref.size() != 64) return false;
    for (char c : ref)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// Answers git's username and password prompts from the environment, never from a terminal.
constexpr const char* k_askpass_script =
    "#!/bin/sh\n"
    "case \"$1\" in\n"
    "  Username*) printf '%s\\n' \"$GIT_USERNAME\" ;;\n"
    "  *) printf '%s\\n' \"${GIT_PASSWORD:-$GIT_TOKEN}\" ;;\n"
    "esac\n";

class GitRunner {
public:
    GitRunner(const GitFetch& fetch, std::string askpass) : m_fetch(fetch) {
        for (const auto& [name, value] : fetch.environment) m_environment.push_back(str_cat(name, "=", value));
        m_environment.push_back("GIT_TERMINAL_PROMPT=0");
        m_environment.push_back("GIT_CONFIG_NOSYSTEM=1");
        if (!askpass.empty()) m_environment.push_back("GIT_ASKPASS=" + askpass);
    }

    // git -C <directory> <args>, with the transports a context may use and nothing else (no file:// or ext::
    // from a hostile repository's submodules).
    Status run(const std::vector<std::string>& args, const std::string& what) const {
        std::vector<std::string> argv = {"git",
                                         "-C",
                                         m_fetch.directory,
                                         "-c",
                                         "protocol.allow=never",
                                         "-c",
                                         "protocol.https.allow=always",
                                         "-c",
                                         "protocol.http.allow=always",
                                         "-c",
                                         "protocol.git.allow=always",
                                         "-c",
                                         "protocol.ssh.allow=always",
                                         "-c",
                                         "advice.detachedHead=false"};
        if (m_fetch.options.insecure_skip_tls) argv.insert(argv.end(), {"-c", "http.sslVerify=false"});
        argv.insert(argv.end(), args.begin(), args.end());
        ProcessOptions options;
        options.environment = m_environment;
        options.timeout = k_fetch_timeout;
        options.output_limit = k_output_limit;
        auto result = run_process(argv, options);
        if (!result && result.error().errno_value() == ENOENT)
            return fail(str_cat(what, ": git contexts need the git command, which is not installed"));
        if (!result) return fail(std::move(result).error().context(what));
        if (result->exit_code != 0)
            return fail(str_cat(what, ": git exited with ", result->exit_code, ": ", trim(result->stderr_bytes)));
        return {};
    }

private:
    const GitFetch& m_fetch;
    std::vector<std::string> m_environment;
};

}  // namespace

bool is_git_context(std::string_view context) {
    if (context.starts_with("git://") || context.starts_with("git@") || context.starts_with("ssh://")) return true;
    if (!context.starts_with("https://") && !context.starts_with("http://")) return false;
    std::string_view repository = context.substr(0, context.find('#'));
    return repository.ends_with(".git") || repository.ends_with(".git/");
}

Result<GitUrl> parse_git_context(std::string_view context) {
    if (!is_git_context(context)) return fail(str_cat("--context ", context, ": not a git repository URL"));
    GitUrl url;
    size_t hash = context.find('#');
    url.repository = std::string(context.substr(0, hash));
    if (hash != std::string_view::npos) {
        std::string_view fragment = context.substr(hash + 1);
        // Kaniko also takes "#ref#commit": the commit wins.
        if (size_t second = fragment.find('#'); second != std::string_view::npos) {
            std::string_view commit = fragment.substr(second + 1);
            if (!is_commit(commit)) return fail(str_cat("--context ", context, ": \"", commit, "\" is not a commit id"));
            fragment = commit;
        }
        size_t colon = fragment.find(':');
        url.ref = std::string(fragment.substr(0, colon));
        if (colon != std::string_view::npos) url.subdir = std::string(fragment.substr(colon + 1));
    }
    if (url.ref.starts_with("-") || url.ref.find_first_of(" \t\n\\~^:?*[") != std::string::npos)
        return fail(str_cat("--context ", context, ": \"", url.ref, "\" is not a git ref"));
    if (!url.subdir.empty() && (url.subdir.starts_with("/") || escapes_root(url.subdir)))
        return fail(str_cat("--context ", context, ": the subdirectory \"", url.subdir, "\" must be inside the repository"));
    if (url.repository.starts_with("-")) return fail(str_cat("--context ", context, ": not a repository URL"));
    return url;
}

Status apply_git_option(GitOptions& options, std::string_view value) {
    for (const std::string& item : split(std::string(value), ',')) {
        size_t equals = item.find('=');
        std::string key = std::string(trim(std::string_view(item).substr(0, equals)));
        std::string setting = equals == std::string::npos ? "" : std::string(trim(std::string_view(item).substr(equals + 1)));
        auto boolean = [&](bool& field) -> Status {
            if (setting == "true") field = true;
            else if (setting == "false") field = false;
            else return fail(str_cat("--git ", key, ": expected true or false, got \"", setting, "\""));
            return {};
        };
        if (key == "branch") {
            if (setting.empty() || setting.starts_with("-")) return fail(str_cat("--git branch: \"", setting, "\" is not a branch"));
            options.branch = setting;
        } else if (key == "single-branch") {
            KILN_TRY(boolean(options.single_branch));
        } else if (key == "recurse-submodules") {
            KILN_TRY(boolean(options.recurse_submodules));
        } else if (key == "insecure-skip-tls") {
            KILN_TRY(boolean(options.insecure_skip_tls));
        } else {
            return fail(str_cat("--git: unknown option \"", key,
                                "\" (branch, single-branch, recurse-submodules, insecure-skip-tls)"));
        }
    }
    return {};
}

Result<std::string> fetch_git_context(const GitFetch& fetch) {
    const GitUrl& url = fetch.url;
    std::string shown = url.repository + (url.ref.empty() ? "" : "#" + url.ref);
    KILN_TRY(make_directories(fetch.directory, 0755));
    std::string askpass;
    auto variable = [&](const char* name) { return fetch.environment.contains(name); };
    if (variable("GIT_USERNAME") || variable("GIT_PASSWORD") || variable("GIT_TOKEN")) {
        askpass = parent_path(fetch.directory) + "/git-askpass";
        KILN_TRY(write_file_atomic(askpass, k_askpass_script, 0700));
    }
    GitRunner git(fetch, askpass);
    std::string ref = url.ref.empty() ? fetch.options.branch : url.ref;
    std::string what = "--context " + shown;
    KILN_TRY(git.run({"init", "-q"}, what));
    KILN_TRY(git.run({"remote", "add", "origin", "--", url.repository}, what));
    // One commit, without history: a branch, a tag or a commit id. Where the server cannot give that (git's dumb
    // HTTP protocol, a server that refuses commit ids), the history comes too.
    std::string wanted = ref.empty() ? "HEAD" : ref;
    Status shallow = git.run({"fetch", "-q", "--depth", "1", "--no-tags", "origin", "--", wanted}, what);
    if (shallow) {
        KILN_TRY(git.run({"checkout", "-q", "FETCH_HEAD", "--"}, what));
    } else if (is_commit(wanted)) {
        log_info("context: ", url.repository, " did not give commit ", wanted, " alone (", shallow.error().message(),
                 "); fetching every branch and tag");
        KILN_TRY(git.run({"fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"}, what));
        KILN_TRY(git.run({"checkout", "-q", wanted, "--"}, what));
    } else {
        log_info("context: ", url.repository, " did not give ", wanted, " alone (", shallow.error().message(),
                 "); fetching its history");
        KILN_TRY(git.run({"fetch", "-q", "--no-tags", "origin", "--", wanted}, what));
        KILN_TRY(git.run({"checkout", "-q", "FETCH_HEAD", "--"}, what));
    }
    if (fetch.options.recurse_submodules)
        KILN_TRY(git.run({"submodule", "update", "-q", "--init", "--recursive", "--depth", "1"}, what));
    log_info("context: ", shown, " fetched");
    return fetch.directory;
}

}  // namespace kiln
