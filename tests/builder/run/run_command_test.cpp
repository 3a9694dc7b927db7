// What a RUN executes for each heredoc form, and its history entry, against BuildKit's dispatchRun.

#include "builder/run/run_command.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using Argv = std::vector<std::string>;

dockerfile::RunInstruction shell_run(std::string line, std::vector<dockerfile::HeredocFile> heredocs = {}) {
    dockerfile::RunInstruction run;
    run.args = {std::move(line)};
    run.heredocs = std::move(heredocs);
    return run;
}

dockerfile::HeredocFile heredoc(std::string name, std::string content, bool expand = true) {
    return dockerfile::HeredocFile{.name = std::move(name), .content = std::move(content), .expand = expand};
}

RunCommandLine command_of(const dockerfile::RunInstruction& run, const RunConfig& config = {}) {
    auto line = run_command_line(run, config);
    EXPECT_TRUE(line) << line.error().message();
    return line ? *line : RunCommandLine{};
}

TEST(RunCommand, ShellFormRunsInTheStagesShell) {
    EXPECT_EQ(command_of(shell_run("echo hi")).argv, (Argv{"/bin/sh", "-c", "echo hi"}));
    RunConfig bash;
    bash.shell = Argv{"/bin/bash", "-eo", "pipefail", "-c"};
    EXPECT_EQ(command_of(shell_run("echo hi"), bash).argv,
              (Argv{"/bin/bash", "-eo", "pipefail", "-c", "echo hi"}));
}

TEST(RunCommand, ExecFormRunsAsWritten) {
    dockerfile::RunInstruction run;
    run.shell_form = false;
    run.args = {"/bin/echo", "a b"};
    EXPECT_EQ(command_of(run).argv, (Argv{"/bin/echo", "a b"}));
}

TEST(RunCommand, AHeredocAloneIsTheShellsCommandString) {
    RunCommandLine line = command_of(shell_run("<<EOF", {heredoc("EOF", "echo one\necho two\n")}));
    EXPECT_EQ(line.argv, (Argv{"/bin/sh", "-c", "echo one\necho two\n"}));
    EXPECT_FALSE(line.script);
    // A quoted delimiter changes nothing: the shell expands at run time either way.
    EXPECT_EQ(command_of(shell_run("<<-'EOF'", {heredoc("EOF", "echo $HOME\n", false)})).argv,
              (Argv{"/bin/sh", "-c", "echo $HOME\n"}));
}

TEST(RunCommand, AShebangHeredocIsAnExecutableFileTheShellRuns) {
    RunCommandLine line =
        command_of(shell_run("<<EOF", {heredoc("EOF", "#!/usr/bin/env python3\nprint(1)\n")}));
    EXPECT_EQ(line.argv, (Argv{"/bin/sh", "-c", "/dev/pipes/EOF"}));
    ASSERT_TRUE(line.script);
    EXPECT_EQ(line.script->kind, RunMountKind::file);
    EXPECT_EQ(line.script->target, "/dev/pipes/EOF");
    EXPECT_EQ(line.script->content, "#!/usr/bin/env python3\nprint(1)\n");
    EXPECT_EQ(line.script->mode, 0755u);
}

TEST(RunCommand, OtherHeredocUsesAreRebuiltForTheShell) {
    EXPECT_EQ(command_of(shell_run("<<EOF python3", {heredoc("EOF", "print(1)\n")})).argv,
              (Argv{"/bin/sh", "-c", "<<EOF python3\nprint(1)\nEOF"}));
    EXPECT_EQ(command_of(shell_run("cat <<A > /a && cat <<'B' > /b",
                                   {heredoc("A", "alpha\n"), heredoc("B", "$beta\n", false)}))
                  .argv,
              (Argv{"/bin/sh", "-c", "cat <<A > /a && cat <<'B' > /b\nalpha\nA\n$beta\nB"}));
}

TEST(RunCommand, HeredocsNeedTheShellForm) {
    dockerfile::RunInstruction run = shell_run("<<EOF", {heredoc("EOF", "x\n")});
    run.shell_form = false;
    EXPECT_FALSE(run_command_line(run, {}));
    EXPECT_FALSE(run_command_line(dockerfile::RunInstruction{}, {}));
}

TEST(RunCommand, HistoryIsTheArgvJoinedBySpaces) {
    EXPECT_EQ(run_created_by({}, {}, {"/bin/sh", "-c", "echo hi"}), "RUN /bin/sh -c echo hi");
    EXPECT_EQ(run_created_by({}, {}, {"/bin/echo", "a b"}), "RUN /bin/echo a b");
}

TEST(RunCommand, HistoryListsDeclaredArgsWithEnvWinning) {
    RunConfig config;
    config.env = {"A=from-env"};
    std::vector<std::pair<std::string, std::optional<std::string>>> declared = {
        {"A", "from-arg"}, {"B", std::nullopt}, {"C", "3"}};
    EXPECT_EQ(run_created_by(declared, config, {"/bin/sh", "-c", "true"}),
              "RUN |3 A=from-env B= C=3 /bin/sh -c true");
}

}  // namespace
}  // namespace kiln
