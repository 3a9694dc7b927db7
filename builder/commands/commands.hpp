#pragma once
// One function per Dockerfile instruction (one file each). Each reads and updates the stage being built: its
// image config, its rootfs and its layers. Errors name the instruction's file and line.

#include "builder/session.hpp"
#include "dockerfile-parser/instructions.hpp"

namespace kiln {

Status execute_arg(StageState& state, const dockerfile::ArgInstruction& instruction);
Status execute_env(StageState& state, const dockerfile::EnvInstruction& instruction);
Status execute_label(StageState& state, const dockerfile::LabelInstruction& instruction);
Status execute_run(StageState& state, const dockerfile::RunInstruction& instruction);
Status execute_copy(StageState& state, const dockerfile::CopyInstruction& instruction);
Status execute_add(StageState& state, const dockerfile::AddInstruction& instruction);
Status execute_workdir(StageState& state, const dockerfile::WorkdirInstruction& instruction);
Status execute_cmd(StageState& state, const dockerfile::CmdInstruction& instruction);
Status execute_entrypoint(StageState& state, const dockerfile::EntrypointInstruction& instruction);
Status execute_shell(StageState& state, const dockerfile::ShellInstruction& instruction);
Status execute_user(StageState& state, const dockerfile::UserInstruction& instruction);
Status execute_expose(StageState& state, const dockerfile::ExposeInstruction& instruction);
Status execute_volume(StageState& state, const dockerfile::VolumeInstruction& instruction);
Status execute_stopsignal(StageState& state, const dockerfile::StopsignalInstruction& instruction);
Status execute_healthcheck(StageState& state, const dockerfile::HealthcheckInstruction& instruction);
Status execute_onbuild(StageState& state, const dockerfile::OnbuildInstruction& instruction);
Status execute_maintainer(StageState& state, const dockerfile::MaintainerInstruction& instruction);

// Which instruction a CopyRequest comes from: ADD also downloads URLs and unpacks local archives.
enum class CopyCommand { copy, add };

// What COPY and ADD copy: raw (unexpanded) words from the instruction.
struct CopyRequest {
    std::vector<std::string> sources;
    std::vector<dockerfile::HeredocFile> inline_sources;
    std::string destination;
    std::string from;  // empty: the build context
    std::string chown;
    std::string chmod;
    std::vector<std::string> excludes;  // --exclude patterns, .dockerignore syntax
    bool parents = false;               // COPY --parents: keep each source's path below the root or a "/./" pivot
    std::string checksum;               // ADD --checksum of its one URL
    CopyCommand command = CopyCommand::copy;
};

// Copies the request's sources into the stage's rootfs and commits the files written as one layer.
Status copy_into_stage(StageState& state, const dockerfile::InstructionBase& at, const CopyRequest& request);

// The argv a shell-form command runs as: the stage's SHELL (default /bin/sh -c) followed by the command.
std::vector<std::string> shell_command(const RunConfig& config, const std::string& command);

// An error located at `at`: "Dockerfile:12: COPY a b: <message>".
Error instruction_error(const StageState& state, const dockerfile::InstructionBase& at, std::string message);

}  // namespace kiln
