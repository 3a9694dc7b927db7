#pragma once
// Stage 2 of parsing: each AST node becomes one typed instruction. Values stay raw (quotes, escapes and $VARs
// as written): the builder expands them at dispatch with ShellExpander and the stage's ARG/ENV scope.

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "dockerfile-parser/ast.hpp"

namespace kiln::dockerfile {

// Where an instruction is in its Dockerfile.
struct Location {
    std::string file;
    int start_line = 0;  // 1-based, inclusive
    int end_line = 0;
};

// What every instruction carries: where it is and its text (the logical line, continuations joined).
struct InstructionBase {
    Location location;
    std::string original;

    // Where errors about this instruction point: its file, first line and text.
    SourceLocation source_location() const {
        return SourceLocation{.file = location.file, .line = static_cast<size_t>(location.start_line), .text = original};
    }
};

// FROM [--platform=…] image [AS name]: starts a stage.
struct FromInstruction : InstructionBase {
    std::string image;       // "alpine:3.19", "${BASE}", "scratch", or an earlier stage's name
    std::string stage_name;  // after AS, as written; compare case-insensitively (Stage::name is lower-cased)
    std::string platform;    // --platform, empty when absent
};

// ARG name[=default] …
struct ArgInstruction : InstructionBase {
    struct Arg {
        std::string name;
        std::optional<std::string> default_value;  // raw text after '='; nullopt for a bare `ARG NAME`
    };
    std::vector<Arg> args;
};

// One ENV or LABEL assignment.
struct KeyValue {
    std::string key;
    std::string value;  // raw: quotes and escapes as written
};

// ENV k=v … (or the legacy ENV k v).
struct EnvInstruction : InstructionBase {
    std::vector<KeyValue> pairs;
    bool legacy_form = false;  // `ENV key value with spaces`
};

// LABEL k=v …
struct LabelInstruction : InstructionBase {
    std::vector<KeyValue> pairs;
    bool legacy_form = false;
};

// A heredoc used as a command's stdin or as an inline file.
struct HeredocFile {
    std::string name;      // the delimiter: a COPY/ADD source's file name
    std::string content;   // body; with <<- its leading tabs are already removed
    bool expand = true;    // false when the delimiter was quoted: no variable expansion in the body
    bool chomp = false;
    std::uint64_t fd = 0;
};

// RUN [--mount=…] [--network=…] [--security=…] command, with its heredocs.
struct RunInstruction : InstructionBase {
    bool shell_form = true;
    std::vector<std::string> args;    // JSON elements, or the one shell string
    std::vector<std::string> mounts;  // each --mount value, raw
    std::string network;              // --network, raw
    std::string security;             // --security, raw
    std::vector<HeredocFile> heredocs;
};

// COPY [flags] src… dest; sources may be heredocs.
struct CopyInstruction : InstructionBase {
    std::vector<std::string> sources;       // paths (heredoc sources are in `inline_sources`)
    std::vector<HeredocFile> inline_sources;  // COPY <<EOF /path
    std::string destination;
    std::string from;   // --from: a stage name, stage index or image
    std::string chown;
    std::string chmod;
    bool link = false;
    bool parents = false;
    std::vector<std::string> excludes;  // --exclude, repeatable
};

// ADD [flags] src… dest; like COPY plus URLs, git and archives, without --from/--parents.
struct AddInstruction : InstructionBase {
    std::vector<std::string> sources;         // paths, URLs or git references
    std::vector<HeredocFile> inline_sources;
    std::string destination;
    std::string chown;
    std::string chmod;
    bool link = false;
    bool keep_git_dir = false;
    std::string checksum;
    std::vector<std::string> excludes;
};

// WORKDIR path (raw; relative paths resolve against the previous WORKDIR at dispatch).
struct WorkdirInstruction : InstructionBase {
    std::string path;
};

// CMD, ENTRYPOINT and SHELL share a shape: exec form (JSON) or one shell string.
struct CommandLine {
    bool shell_form = true;
    std::vector<std::string> args;  // empty for `CMD []`
};
struct CmdInstruction : InstructionBase, CommandLine {};
struct EntrypointInstruction : InstructionBase, CommandLine {};
struct ShellInstruction : InstructionBase, CommandLine {};  // always JSON form

// USER user[:group]
struct UserInstruction : InstructionBase {
    std::string user;
};

// EXPOSE port[/proto] …
struct ExposeInstruction : InstructionBase {
    std::vector<std::string> ports;  // raw: "80", "8080/tcp", "$PORT"
};

// VOLUME path … (JSON or words).
struct VolumeInstruction : InstructionBase {
    std::vector<std::string> paths;
};

// STOPSIGNAL signal
struct StopsignalInstruction : InstructionBase {
    std::string signal;
};

// HEALTHCHECK [flags] CMD command, or HEALTHCHECK NONE. Durations are validated by the builder.
struct HealthcheckInstruction : InstructionBase {
    bool none = false;  // HEALTHCHECK NONE: disable the base image's check
    std::string interval, timeout, start_period, start_interval, retries;  // raw flag values, empty if unset
    bool shell_form = true;         // CMD-SHELL when true
    std::vector<std::string> args;  // the command after CMD
};

// ONBUILD trigger: stored for images built FROM this one.
struct OnbuildInstruction : InstructionBase {
    std::string trigger;  // the trigger's text, e.g. "RUN make", heredoc bodies appended as buildkit does
};

// MAINTAINER name (deprecated; becomes the author field).
struct MaintainerInstruction : InstructionBase {
    std::string name;
};

// One typed instruction; the alternative says which.
using Instruction =
    std::variant<FromInstruction, ArgInstruction, EnvInstruction, LabelInstruction, RunInstruction,
                 CopyInstruction, AddInstruction, WorkdirInstruction, CmdInstruction, EntrypointInstruction,
                 ShellInstruction, UserInstruction, ExposeInstruction, VolumeInstruction, StopsignalInstruction,
                 HealthcheckInstruction, OnbuildInstruction, MaintainerInstruction>;

// Turns one AST node into its typed instruction. Unknown instructions, unknown or repeated flags and wrong
// argument counts are errors naming "<file>:<line>" and quoting the instruction.
Result<Instruction> parse_instruction(const Node& node, std::string_view file_name);

// The location and text shared by every alternative.
const InstructionBase& instruction_base(const Instruction& instruction);

// "RUN", "COPY", …: the instruction's keyword in upper case.
std::string_view instruction_name(const Instruction& instruction);

}  // namespace kiln::dockerfile
