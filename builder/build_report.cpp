#include "builder/build_report.hpp"

#include <algorithm>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "images/image_config.hpp"

namespace kiln {
namespace {

using Clock = std::chrono::system_clock;

// The activities the summary gives the time of, in the order of a build.
constexpr const char* k_phases[] = {"pull", "extract", "run", "snapshot", "compress", "push"};

double number_field(const LogRecord& record, std::string_view name) {
    const LogValue* value = record.field(name);
    if (!value) return 0;
    if (const double* seconds = std::get_if<double>(value)) return *seconds;
    if (const std::int64_t* count = std::get_if<std::int64_t>(value)) return static_cast<double>(*count);
    return 0;
}

std::string text_field(const LogRecord& record, std::string_view name) {
    const LogValue* value = record.field(name);
    if (!value) return {};
    if (const std::string* text = std::get_if<std::string>(value)) return *text;
    return {};
}

Clock::time_point started_before(Clock::time_point end, double seconds) {
    return end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// Microseconds from the build's start: trace time.
std::int64_t micros(Clock::time_point time, Clock::time_point origin) {
    return std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(time - origin).count());
}

std::string short_digest(const std::string& digest) {
    size_t colon = digest.find(':');
    return colon == std::string::npos ? digest : digest.substr(colon + 1, 12);
}

}  // namespace

BuildReport::BuildReport(Clock::time_point start) : m_start(start) {}

BuildReport::Step* BuildReport::find_step(const LogPlace& place) {
    for (auto step = m_steps.rbegin(); step != m_steps.rend(); ++step)
        if (step->stage == place.stage && step->step == place.step) return &*step;
    return nullptr;
}

void BuildReport::add(const LogRecord& record) {
    std::lock_guard lock(m_mutex);
    auto slice = [&](std::string row, std::string name, nlohmann::json args) {
        double seconds = number_field(record, "seconds");
        m_slices.push_back(Slice{.row = std::move(row),
                                 .name = std::move(name),
                                 .start = started_before(record.time, seconds),
                                 .end = record.time,
                                 .args = std::move(args)});
    };
    switch (record.event) {
        case LogEvent::step_started:
            m_steps.push_back(Step{.stage = record.place.stage,
                                   .step = record.place.step,
                                   .title = std::string(record.message),
                                   .instruction = text_field(record, "instruction"),
                                   .start = record.time});
            break;
        case LogEvent::step_done:
            if (Step* step = find_step(record.place)) {
                step->end = record.time;
                step->seconds = number_field(record, "seconds");
                step->cache = text_field(record, "cache");
                step->cache_source = text_field(record, "cache_source");
                step->layer_digest = text_field(record, "layer_digest");
                if (record.field("layer_size"))
                    step->layer_size = static_cast<std::int64_t>(number_field(record, "layer_size"));
                step->commit_seconds = number_field(record, "commit_seconds");
            }
            break;
        case LogEvent::blob_pulled:
            m_totals["pull"] += number_field(record, "seconds");
            slice("pull", str_cat("pull ", short_digest(text_field(record, "digest"))),
                  {{"digest", text_field(record, "digest")},
                   {"size", number_field(record, "size")},
                   {"repository", text_field(record, "repository")}});
            break;
        case LogEvent::layer_extracted:
            m_totals["extract"] += number_field(record, "seconds");
            slice("extract", str_cat("extract ", short_digest(text_field(record, "digest"))),
                  {{"digest", text_field(record, "digest")}, {"stage", record.place.stage}});
            break;
        case LogEvent::layer_written:
            m_totals["compress"] += number_field(record, "seconds");
            slice("layer", str_cat("write layer ", short_digest(text_field(record, "digest"))),
                  {{"digest", text_field(record, "digest")},
                   {"size", number_field(record, "size")},
                   {"paths", number_field(record, "paths")},
                   {"stage", record.place.stage},
                   {"step", record.place.step}});
            break;
        case LogEvent::blob_pushed:
            m_totals["push"] += number_field(record, "seconds");
            slice(
                "push",
                str_cat("push ", text_field(record, "kind"), " ", short_digest(text_field(record, "digest"))),
                {{"digest", text_field(record, "digest")},
                 {"size", number_field(record, "size")},
                 {"repository", text_field(record, "repository")},
                 {"how", text_field(record, "how")}});
            break;
        case LogEvent::run_done:
            m_totals["run"] += number_field(record, "seconds");
            break;
        case LogEvent::phase_done:
            slice("phase", text_field(record, "phase"), nlohmann::json::object());
            break;
        case LogEvent::message:
        case LogEvent::run_output:
        case LogEvent::progress:
            break;
    }
}

std::vector<const BuildReport::Step*> BuildReport::by_stage() const {
    std::vector<std::string> stages;
    for (const Step& step : m_steps)
        if (std::find(stages.begin(), stages.end(), step.stage) == stages.end()) stages.push_back(step.stage);
    std::vector<const Step*> steps;
    for (const std::string& stage : stages)
        for (const Step& step : m_steps)
            if (step.stage == stage) steps.push_back(&step);
    return steps;
}

std::map<std::string, double> BuildReport::phase_seconds() const {
    std::map<std::string, double> phases;
    for (const char* phase : k_phases) phases[phase] = 0;
    for (const auto& [phase, seconds] : m_totals) phases[phase] = seconds;
    // A step's commit finds what changed, then writes and compresses the layer: the rest is the snapshot.
    double commits = 0;
    for (const Step& step : m_steps) commits += step.commit_seconds;
    phases["snapshot"] = std::max(0.0, commits - phases["compress"]);
    return phases;
}

std::vector<std::string> BuildReport::summary_lines() const {
    std::lock_guard lock(m_mutex);
    std::vector<std::string> lines;
    if (m_steps.empty()) return lines;
    size_t widest = 0;
    for (const Step& step : m_steps) widest = std::max(widest, std::min<size_t>(step.title.size(), 60));
    lines.push_back("summary:");
    for (const Step* each : by_stage()) {
        const Step& step = *each;
        std::string title = step.title.size() > 60 ? step.title.substr(0, 57) + "..." : step.title;
        title.resize(widest, ' ');
        std::string line = str_cat("  ", title, "  ");
        if (!step.end) {
            line += "did not finish";
        } else {
            line += str_cat(format_seconds(step.seconds, 2), " s");
            if (step.cache == "hit") line += str_cat(", cached (", step.cache_source, ")");
            if (step.cache == "miss") line += ", not cached";
            if (step.layer_size >= 0)
                line += str_cat(", layer ", format_bytes(static_cast<std::uint64_t>(step.layer_size)));
        }
        lines.push_back(std::move(line));
    }
    std::vector<std::string> phases;
    std::map<std::string, double> seconds = phase_seconds();
    for (const char* phase : k_phases)
        phases.push_back(str_cat(phase, " ", format_seconds(seconds[phase], 2), " s"));
    lines.push_back(str_cat("  time by phase: ", join(phases, ", ")));
    return lines;
}

nlohmann::ordered_json BuildReport::summary(const BuildOutcome& outcome) const {
    std::lock_guard lock(m_mutex);
    nlohmann::ordered_json summary;
    summary["result"] = outcome.succeeded ? "succeeded" : "failed";
    if (outcome.succeeded) summary["image_digest"] = outcome.image_digest;
    if (!outcome.succeeded) summary["error"] = outcome.error;
    summary["started"] = format_rfc3339(Clock::to_time_t(m_start));
    summary["seconds"] = std::chrono::duration<double>(Clock::now() - m_start).count();
    nlohmann::ordered_json steps = nlohmann::ordered_json::array();
    for (const Step* each : by_stage()) {
        const Step& step = *each;
        nlohmann::ordered_json entry;
        entry["stage"] = step.stage;
        entry["step"] = step.step;
        entry["instruction"] = step.instruction;
        entry["finished"] = step.end.has_value();
        entry["seconds"] =
            step.end ? step.seconds : std::chrono::duration<double>(Clock::now() - step.start).count();
        entry["cache"] = step.cache.empty() ? "off" : step.cache;
        if (!step.cache_source.empty()) entry["cache_source"] = step.cache_source;
        if (!step.layer_digest.empty()) entry["layer_digest"] = step.layer_digest;
        if (step.layer_size >= 0) entry["layer_size"] = step.layer_size;
        steps.push_back(std::move(entry));
    }
    summary["steps"] = std::move(steps);
    nlohmann::ordered_json phases;
    std::map<std::string, double> seconds = phase_seconds();
    for (const char* phase : k_phases) phases[phase] = seconds[phase];
    summary["phase_seconds"] = std::move(phases);
    return summary;
}

nlohmann::json BuildReport::trace() const {
    std::lock_guard lock(m_mutex);
    nlohmann::json events = nlohmann::json::array();
    Clock::time_point origin = m_start;
    Clock::time_point now = Clock::now();
    std::map<std::string, int> rows;  // row name → tid
    auto row = [&](const std::string& name) {
        auto [found, added] = rows.emplace(name, static_cast<int>(rows.size()) + 1);
        if (added)
            events.push_back({{"name", "thread_name"},
                              {"ph", "M"},
                              {"pid", 1},
                              {"tid", found->second},
                              {"args", {{"name", name}}}});
        return found->second;
    };
    auto complete = [&](int tid, const std::string& name, const std::string& category,
                        Clock::time_point start, Clock::time_point end, nlohmann::json args) {
        events.push_back({{"name", name},
                          {"cat", category},
                          {"ph", "X"},
                          {"pid", 1},
                          {"tid", tid},
                          {"ts", micros(start, origin)},
                          {"dur", std::max<std::int64_t>(1, micros(end, start))},
                          {"args", std::move(args)}});
    };
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"args", {{"name", "kiln build"}}}});

    // Each stage its row: the stage's slice, its steps within.
    std::vector<std::string> stages;
    for (const Step& step : m_steps)
        if (std::find(stages.begin(), stages.end(), step.stage) == stages.end()) stages.push_back(step.stage);
    for (const std::string& stage : stages) {
        int tid = row(stage.empty() ? "build" : stage);
        Clock::time_point first = now, last = origin;
        for (const Step& step : m_steps) {
            if (step.stage != stage) continue;
            first = std::min(first, step.start);
            last = std::max(last, step.end.value_or(now));
        }
        complete(tid, stage, "stage", first, last, nlohmann::json::object());
        for (const Step& step : m_steps) {
            if (step.stage != stage) continue;
            nlohmann::json args = {{"instruction", step.instruction},
                                   {"cache", step.cache.empty() ? "off" : step.cache}};
            if (!step.cache_source.empty()) args["cache_source"] = step.cache_source;
            if (!step.layer_digest.empty()) args["layer_digest"] = step.layer_digest;
            if (step.layer_size >= 0) args["layer_size"] = step.layer_size;
            if (!step.end) args["finished"] = false;
            complete(tid, step.title, "step", step.start, step.end.value_or(now), std::move(args));
        }
    }

    // The other activities: a row each, and another wherever slices of one overlap.
    std::vector<const Slice*> slices;
    for (const Slice& slice : m_slices) slices.push_back(&slice);
    std::stable_sort(slices.begin(), slices.end(),
                     [](const Slice* a, const Slice* b) { return a->start < b->start; });
    std::map<std::string, std::vector<Clock::time_point>> lanes;  // activity → when each of its rows is free
    for (const Slice* slice : slices) {
        std::vector<Clock::time_point>& free_at = lanes[slice->row];
        size_t lane = 0;
        while (lane < free_at.size() && free_at[lane] > slice->start) ++lane;
        if (lane == free_at.size()) free_at.push_back(slice->end);
        free_at[lane] = slice->end;
        int tid = row(lane == 0 ? slice->row : str_cat(slice->row, " ", lane + 1));
        complete(tid, slice->name, slice->row, slice->start, slice->end, slice->args);
    }
    return nlohmann::json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

namespace {

// Bytes that are not UTF-8 (a Dockerfile may hold any) are replaced, as in the JSON log.
template <class Json>
Status write_document(const std::string& path, const Json& document, int indent, const std::string& flag) {
    std::string text = document.dump(indent, ' ', false, Json::error_handler_t::replace) + "\n";
    return with_context(write_named_file(path, text), str_cat(flag, " ", path));
}

}  // namespace

Status write_json_file(const std::string& path, const nlohmann::json& document, const std::string& flag) {
    return write_document(path, document, 1, flag);
}

Status write_json_file(const std::string& path, const nlohmann::ordered_json& document,
                       const std::string& flag) {
    return write_document(path, document, 2, flag);
}

}  // namespace kiln
