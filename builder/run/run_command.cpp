#include "builder/run/run_command.hpp"

#include "common/strings.hpp"
#include "dockerfile-parser/ast.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

std::vector<std::string> shell_command(const RunConfig& config, const std::string& command) {
    std::vector<std::string> argv = config.shell.value_or(std::vector<std::string>{"/bin/sh", "-c"});
    argv.push_back(command);
    return argv;
}

Result<RunCommandLine> run_command_line(const dockerfile::RunInstruction& run, const RunConfig& config) {
    if (run.args.empty()) return fail("RUN needs a command");
    RunCommandLine line;
    if (run.heredocs.empty()) {
        line.argv = run.shell_form ? shell_command(config, run.args[0]) : run.args;
        return line;
    }
    if (!run.shell_form || run.args.size() != 1)
        return fail("parsing produced an invalid run command: heredocs need the shell form");

    KILN_ASSIGN(std::optional<dockerfile::Heredoc> only, dockerfile::parse_heredoc(run.args[0]));
    if (!only) {
        // The shell reads the heredocs itself, <<- and quoted delimiters included.
        std::string script = run.args[0];
        for (const dockerfile::HeredocFile& heredoc : run.heredocs)
            script += "\n" + heredoc.content + heredoc.name;
        line.argv = shell_command(config, std::move(script));
        return line;
    }
    // The parser has already removed <<-'s leading tabs from the body.
    const dockerfile::HeredocFile& heredoc = run.heredocs.front();
    if (!heredoc.content.starts_with("#!")) {
        line.argv = shell_command(config, heredoc.content);
        return line;
    }
    std::string name = clean_path(heredoc.name);
    if (name.empty() || name.find('/') != std::string::npos)
        return fail(str_cat("heredoc delimiter \"", heredoc.name, "\" cannot name a script file"));
    RunMount script;
    script.kind = RunMountKind::file;
    script.target = str_cat(k_heredoc_script_directory, "/", name);
    script.content = heredoc.content;
    script.mode = 0755;
    line.argv = shell_command(config, script.target);
    line.script = std::move(script);
    return line;
}

std::string run_created_by(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& declared_args,
    const RunConfig& config, const std::vector<std::string>& argv) {
    std::vector<std::string> words;
    if (!declared_args.empty()) {
        words.push_back(str_cat("|", declared_args.size()));
        for (const auto& [name, value] : declared_args) {
            std::optional<std::string> from_env = config.env_value(name);
            words.push_back(str_cat(name, "=", from_env ? *from_env : value.value_or("")));
        }
    }
    words.insert(words.end(), argv.begin(), argv.end());
    return "RUN " + join(words, " ");
}

}  // namespace kiln
