#include "builder/plan/step.hpp"

#include <nlohmann/json.hpp>

#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "images/image_config.hpp"

namespace kiln {
namespace {

using nlohmann::json;

json describe_source(const SourceRef& from) {
    switch (from.kind) {
        case SourceRef::Kind::context:
            return "context";
        case SourceRef::Kind::stage:
            return str_cat("stage ", from.stage);
        case SourceRef::Kind::image:
            return str_cat("image ", from.image);
    }
    return nullptr;
}

json describe_mount(const PlannedMount& mount) {
    const RunMountRequest& request = mount.request;
    json entry = {{"type", run_mount_type_name(request.type)}, {"target", mount.target},
                  {"from", describe_source(mount.from)}, {"source", request.source},
                  {"id", request.id}, {"read_only", request.read_only}, {"required", request.required}};
    if (request.size) entry["size"] = *request.size;
    if (request.sharing) entry["sharing"] = static_cast<int>(*request.sharing);
    if (request.mode) entry["mode"] = *request.mode;
    if (request.uid) entry["uid"] = *request.uid;
    if (request.gid) entry["gid"] = *request.gid;
    if (request.env) entry["env"] = *request.env;
    return entry;
}

void describe_action(const std::monostate&, const Step& step, std::vector<std::pair<std::string, json>>& lines) {
    // A config step's result is the config itself.
    json config = json::parse(ImageConfig{.config = step.config}.serialize())["config"];
    lines.emplace_back("config", config);
    if (step.author) lines.emplace_back("author", *step.author);
}

void describe_action(const RunStep& run, const Step&, std::vector<std::pair<std::string, json>>& lines) {
    lines.emplace_back("argv", run.argv);
    if (run.script) lines.emplace_back("script", json{{"target", run.script->target}, {"content", run.script->content}});
    lines.emplace_back("environment", run.environment);
    lines.emplace_back("user", run.user);
    lines.emplace_back("workdir", run.working_directory);
    lines.emplace_back("network", run.network == NetworkMode::none ? "none" : "host");
    json mounts = json::array();
    for (const PlannedMount& mount : run.mounts) mounts.push_back(describe_mount(mount));
    lines.emplace_back("mounts", mounts);
    lines.emplace_back("volumes", run.volumes);
}

void describe_action(const CopyStep& copy, const Step&, std::vector<std::pair<std::string, json>>& lines) {
    lines.emplace_back("command", copy.command == CopyCommand::add ? "ADD" : "COPY");
    lines.emplace_back("from", describe_source(copy.from));
    lines.emplace_back("sources", copy.sources);
    json inline_sources = json::array();
    for (const dockerfile::HeredocFile& file : copy.inline_sources)
        inline_sources.push_back(json{{"name", file.name}, {"content", file.content}});
    lines.emplace_back("inline", inline_sources);
    lines.emplace_back("destination", "/" + copy.destination);
    lines.emplace_back("destination_is_directory", copy.destination_is_directory);
    lines.emplace_back("chown", copy.chown);
    lines.emplace_back("chmod", copy.chmod);
    lines.emplace_back("excludes", copy.excludes);
    lines.emplace_back("parents", copy.parents);
    lines.emplace_back("checksum", copy.checksum);
}

void describe_action(const WorkdirStep& workdir, const Step&, std::vector<std::pair<std::string, json>>& lines) {
    lines.emplace_back("path", workdir.path);
    lines.emplace_back("user", workdir.user);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> step_fields(const Step& step) {
    std::vector<std::pair<std::string, json>> lines = {{"instruction", step.keyword}};
    std::visit([&](const auto& action) { describe_action(action, step, lines); }, step.action);
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& [key, value] : lines) fields.emplace_back(key, value.dump());
    return fields;
}

std::string describe_step(const Step& step) {
    std::string text;
    for (const auto& [key, value] : step_fields(step)) text += str_cat(key, ": ", value, "\n");
    return text;
}

Digest step_digest(const Step& step) { return Digest::from_sha256_hex(sha256_hex(describe_step(step))); }

}  // namespace kiln
