// AST node → typed instruction, one parse function per instruction.

#include "dockerfile-parser/instructions.hpp"

#include <algorithm>

#include "common/strings.hpp"
#include "dockerfile-parser/flags.hpp"
#include "dockerfile-parser/unicode.hpp"

namespace kiln::dockerfile {

namespace {

using detail::InstructionFlags;
using Kind = InstructionFlags::Kind;

// What every parse function gets: the node's arguments and flags, and a half-built base to copy.
struct Request {
    const Node& node;
    std::vector<std::string> args;
    InstructionFlags flags;
    InstructionBase base;
    bool json_form() const { return node.json_form; }
};

Status at_least_one(const Request& request, std::string_view name) {
    if (request.args.empty()) return fail(str_cat(name, " requires at least one argument"));
    return {};
}

Status exactly_one(const Request& request, std::string_view name) {
    if (request.args.size() != 1) return fail(str_cat(name, " requires exactly one argument"));
    return {};
}

template <class T>
T with_base(const Request& request) {
    T instruction{};
    static_cast<InstructionBase&>(instruction) = request.base;
    return instruction;
}

bool valid_stage_name(std::string_view name) {
    if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
}

Result<Instruction> parse_from(Request& request) {
    auto from = with_base<FromInstruction>(request);
    const std::vector<std::string>& args = request.args;
    if (args.size() == 3 && to_lower(args[1]) == "as") {
        if (!valid_stage_name(to_lower(args[2])))
            return fail(str_cat("invalid name for build stage: ", go_quote(args[2]),
                                ", name can't start with a number or contain symbols"));
        from.stage_name = args[2];
    } else if (args.size() != 1) {
        return fail("FROM requires either one or three arguments");
    }
    request.flags.define("platform", Kind::string);
    KILN_TRY(request.flags.parse(request.node.flags));
    from.image = args[0];
    from.platform = request.flags.string("platform");
    return from;
}

Result<Instruction> parse_arg(Request& request) {
    KILN_TRY(at_least_one(request, "ARG"));
    KILN_TRY(request.flags.parse(request.node.flags));
    auto arg = with_base<ArgInstruction>(request);
    for (const std::string& word : request.args) {
        size_t equals = word.find('=');
        ArgInstruction::Arg entry{word.substr(0, equals), std::nullopt};
        // As buildkit: an ARG needs a name ("ARG =x" is a mistake, not an unnamed argument).
        if (entry.name.empty()) return fail(str_cat("ARG names can not be blank: ", go_quote(word)));
        if (equals != std::string::npos) entry.default_value = word.substr(equals + 1);
        arg.args.push_back(std::move(entry));
    }
    return arg;
}

// ENV and LABEL nodes hold (key, value, "=" or "") triples.
template <class T>
Result<Instruction> parse_key_values(Request& request, std::string_view name) {
    KILN_TRY(request.flags.parse(request.node.flags));
    const std::vector<std::string>& args = request.args;
    if (args.empty()) return fail(str_cat(name, " requires at least one argument"));
    if (args.size() % 3 != 0) return fail(str_cat(name, " has too many arguments"));
    auto instruction = with_base<T>(request);
    for (size_t i = 0; i < args.size(); i += 3) {
        if (args[i].empty()) return fail(str_cat(name, " names can not be blank"));
        instruction.pairs.push_back({args[i], args[i + 1]});
        instruction.legacy_form = args[i + 2].empty();
    }
    return instruction;
}

std::vector<HeredocFile> heredoc_files(const Node& node) {
    std::vector<HeredocFile> files;
    for (const Heredoc& heredoc : node.heredocs)
        files.push_back({heredoc.name, heredoc.chomp ? chomp_heredoc_content(heredoc.content) : heredoc.content,
                         heredoc.expand, heredoc.chomp, heredoc.fd});
    return files;
}

// The command of RUN/CMD/ENTRYPOINT: JSON elements as they are, or the shell words joined back into one string.
CommandLine command_line(const Request& request) {
    CommandLine line{!request.json_form(), request.args};
    if (line.shell_form && line.args.size() > 1) line.args = {join(line.args, " ")};
    return line;
}

Result<Instruction> parse_run(Request& request) {
    request.flags.define("mount", Kind::list);
    request.flags.define("network", Kind::string);
    request.flags.define("security", Kind::string);
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(at_least_one(request, "RUN"));
    auto run = with_base<RunInstruction>(request);
    CommandLine line = command_line(request);
    run.shell_form = line.shell_form;
    run.args = std::move(line.args);
    run.mounts = request.flags.list("mount");
    run.network = request.flags.string("network");
    run.security = request.flags.string("security");
    run.heredocs = heredoc_files(request.node);
    return run;
}

// Splits COPY/ADD arguments into path sources, heredoc sources and the destination.
template <class T>
Status sources_and_destination(const Request& request, std::string_view name, T& instruction) {
    if (request.args.size() < 2)
        return fail(str_cat(name, " requires at least two arguments, but only one was provided. ",
                            "Destination could not be determined"));
    instruction.destination = request.args.back();
    KILN_ASSIGN(std::optional<Heredoc> destination_heredoc, parse_heredoc(instruction.destination));
    if (destination_heredoc) return fail(str_cat(name, " cannot accept a heredoc as a destination"));
    std::vector<HeredocFile> bodies = heredoc_files(request.node);
    for (size_t i = 0; i + 1 < request.args.size(); ++i) {
        const std::string& source = request.args[i];
        Result<std::optional<Heredoc>> heredoc = parse_heredoc(source);
        if (heredoc && *heredoc && !request.json_form()) {
            HeredocFile file{(*heredoc)->name, "", (*heredoc)->expand, (*heredoc)->chomp, (*heredoc)->fd};
            for (const HeredocFile& body : bodies)
                if (body.name == file.name) file.content = body.content;
            instruction.inline_sources.push_back(std::move(file));
        } else {
            instruction.sources.push_back(source);
        }
    }
    return {};
}

Result<Instruction> parse_copy(Request& request) {
    request.flags.define("from", Kind::string);
    request.flags.define("chown", Kind::string);
    request.flags.define("chmod", Kind::string);
    request.flags.define("link", Kind::boolean);
    request.flags.define("parents", Kind::boolean);
    request.flags.define("exclude", Kind::list);
    KILN_TRY(request.flags.parse(request.node.flags));
    auto copy = with_base<CopyInstruction>(request);
    KILN_TRY(sources_and_destination(request, "COPY", copy));
    copy.from = request.flags.string("from");
    copy.chown = request.flags.string("chown");
    copy.chmod = request.flags.string("chmod");
    copy.link = request.flags.boolean("link");
    copy.parents = request.flags.boolean("parents");
    copy.excludes = request.flags.list("exclude");
    return copy;
}

Result<Instruction> parse_add(Request& request) {
    request.flags.define("chown", Kind::string);
    request.flags.define("chmod", Kind::string);
    request.flags.define("link", Kind::boolean);
    request.flags.define("keep-git-dir", Kind::boolean);
    request.flags.define("checksum", Kind::string);
    request.flags.define("exclude", Kind::list);
    KILN_TRY(request.flags.parse(request.node.flags));
    auto add = with_base<AddInstruction>(request);
    KILN_TRY(sources_and_destination(request, "ADD", add));
    add.chown = request.flags.string("chown");
    add.chmod = request.flags.string("chmod");
    add.link = request.flags.boolean("link");
    add.keep_git_dir = request.flags.boolean("keep-git-dir");
    add.checksum = request.flags.string("checksum");
    add.excludes = request.flags.list("exclude");
    return add;
}

template <class T>
Result<Instruction> parse_command_line(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    auto instruction = with_base<T>(request);
    static_cast<CommandLine&>(instruction) = command_line(request);
    return instruction;
}

Result<Instruction> parse_shell(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(at_least_one(request, "SHELL"));
    if (!request.json_form()) return fail("SHELL requires the arguments to be in JSON form");
    auto shell = with_base<ShellInstruction>(request);
    static_cast<CommandLine&>(shell) = command_line(request);
    return shell;
}

Result<Instruction> parse_healthcheck(Request& request) {
    KILN_TRY(at_least_one(request, "HEALTHCHECK"));
    auto health = with_base<HealthcheckInstruction>(request);
    std::string type = request.args[0];
    std::transform(type.begin(), type.end(), type.begin(), [](char c) {
        return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    });
    std::vector<std::string> rest(request.args.begin() + 1, request.args.end());
    if (type == "NONE") {
        if (!rest.empty()) return fail("HEALTHCHECK NONE takes no arguments");
        health.none = true;
        return health;
    }
    for (const char* name : {"interval", "timeout", "start-period", "start-interval", "retries"})
        request.flags.define(name, Kind::string);
    KILN_TRY(request.flags.parse(request.node.flags));
    if (type != "CMD") return fail(str_cat("Unknown type ", go_quote(request.args[0]), " in HEALTHCHECK (try CMD)"));
    if (rest.empty()) return fail("Missing command after HEALTHCHECK CMD");
    health.shell_form = !request.json_form();
    health.args = health.shell_form ? std::vector<std::string>{join(rest, " ")} : rest;
    health.interval = request.flags.string("interval");
    health.timeout = request.flags.string("timeout");
    health.start_period = request.flags.string("start-period");
    health.start_interval = request.flags.string("start-interval");
    health.retries = request.flags.string("retries");
    return health;
}

bool is_known_command(std::string_view command);

Result<Instruction> parse_onbuild(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    if (request.node.children.empty()) return fail("ONBUILD requires at least one argument");
    const Node& trigger = request.node.children[0];
    std::string command = trigger.command();
    if (command == "onbuild") return fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (command == "maintainer" || command == "from")
        return fail(str_cat(command == "from" ? "FROM" : "MAINTAINER", " isn't allowed as an ONBUILD trigger"));
    if (!is_known_command(command)) return fail(str_cat("unknown instruction: ", trigger.keyword));
    auto onbuild = with_base<OnbuildInstruction>(request);
    // The trigger is the line without its ONBUILD keyword (and the blanks around it).
    std::string_view text = request.node.original;
    const auto is_regex_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; };
    while (!text.empty() && is_regex_space(text.front())) text.remove_prefix(1);
    if (to_lower(text.substr(0, 7)) == "onbuild") text.remove_prefix(7);
    while (!text.empty() && is_regex_space(text.front())) text.remove_prefix(1);
    onbuild.trigger = std::string(text);
    for (const Heredoc& heredoc : request.node.heredocs) onbuild.trigger += str_cat("\n", heredoc.content, heredoc.name);
    return onbuild;
}

}  // namespace

namespace {

using ParseFunction = Result<Instruction> (*)(Request&);

struct CommandEntry {
    std::string_view command;
    ParseFunction parse;
};

Result<Instruction> parse_env(Request& request) { return parse_key_values<EnvInstruction>(request, "ENV"); }
Result<Instruction> parse_label(Request& request) { return parse_key_values<LabelInstruction>(request, "LABEL"); }

Result<Instruction> parse_workdir(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(exactly_one(request, "WORKDIR"));
    auto workdir = with_base<WorkdirInstruction>(request);
    workdir.path = request.args[0];
    return workdir;
}

Result<Instruction> parse_user(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(exactly_one(request, "USER"));
    auto user = with_base<UserInstruction>(request);
    user.user = request.args[0];
    return user;
}

Result<Instruction> parse_stopsignal(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(exactly_one(request, "STOPSIGNAL"));
    auto stopsignal = with_base<StopsignalInstruction>(request);
    stopsignal.signal = request.args[0];
    return stopsignal;
}

Result<Instruction> parse_maintainer(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(exactly_one(request, "MAINTAINER"));
    auto maintainer = with_base<MaintainerInstruction>(request);
    maintainer.name = request.args[0];
    return maintainer;
}

Result<Instruction> parse_expose(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(at_least_one(request, "EXPOSE"));
    auto expose = with_base<ExposeInstruction>(request);
    expose.ports = request.args;
    return expose;
}

Result<Instruction> parse_volume(Request& request) {
    KILN_TRY(request.flags.parse(request.node.flags));
    KILN_TRY(at_least_one(request, "VOLUME"));
    auto volume = with_base<VolumeInstruction>(request);
    for (const std::string& path : request.args) {
        std::string_view trimmed = trim_space(path);
        if (trimmed.empty()) return fail("VOLUME specified can not be an empty string");
        volume.paths.emplace_back(trimmed);
    }
    return volume;
}

Result<Instruction> parse_cmd(Request& request) { return parse_command_line<CmdInstruction>(request); }
Result<Instruction> parse_entrypoint(Request& request) {
    return parse_command_line<EntrypointInstruction>(request);
}

constexpr CommandEntry k_commands[] = {
    {"add", parse_add},         {"arg", parse_arg},
    {"cmd", parse_cmd},         {"copy", parse_copy},
    {"entrypoint", parse_entrypoint}, {"env", parse_env},
    {"expose", parse_expose},   {"from", parse_from},
    {"healthcheck", parse_healthcheck}, {"label", parse_label},
    {"maintainer", parse_maintainer}, {"onbuild", parse_onbuild},
    {"run", parse_run},         {"shell", parse_shell},
    {"stopsignal", parse_stopsignal}, {"user", parse_user},
    {"volume", parse_volume},   {"workdir", parse_workdir},
};

const CommandEntry* find_command(std::string_view command) {
    for (const CommandEntry& entry : k_commands)
        if (entry.command == command) return &entry;
    return nullptr;
}

bool is_known_command(std::string_view command) { return find_command(command) != nullptr; }

Error located_message(const Node& node, std::string_view file_name, std::string_view message) {
    constexpr size_t k_shown = 200;
    std::string_view shown = std::string_view(node.original).substr(0, k_shown);
    return Error(str_cat(message, " (in: ", go_quote(shown), node.original.size() > k_shown ? "…" : "", ")"))
        .at(SourceLocation{.file = std::string(file_name), .line = static_cast<size_t>(node.start_line)});
}

}  // namespace

Result<Instruction> parse_instruction(const Node& node, std::string_view file_name) {
    const CommandEntry* entry = find_command(node.command());
    if (!entry) return fail(located_message(node, file_name, str_cat("unknown instruction: ", node.keyword)));
    Request request{node, node.args, {}, {{std::string(file_name), node.start_line, node.end_line}, node.original}};
    Result<Instruction> instruction = entry->parse(request);
    if (!instruction) return fail(located_message(node, file_name, instruction.error().message()));
    return instruction;
}

const InstructionBase& instruction_base(const Instruction& instruction) {
    return std::visit([](const auto& typed) -> const InstructionBase& { return typed; }, instruction);
}

std::string_view instruction_name(const Instruction& instruction) {
    static constexpr std::string_view k_names[] = {
        "FROM", "ARG", "ENV", "LABEL", "RUN", "COPY", "ADD", "WORKDIR", "CMD", "ENTRYPOINT",
        "SHELL", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"};
    static_assert(std::size(k_names) == std::variant_size_v<Instruction>);
    return k_names[instruction.index()];
}

}  // namespace kiln::dockerfile
