#pragma once
// What a build did, gathered from its log records as they go by (every level, whatever is printed): each step
// with its duration, cache status and layer; the time spent pulling, extracting, running, snapshotting,
// compressing and pushing; and the timeline of all of it. It becomes the summary at the end of the log,
// --summary-file (JSON) and --trace-file (Chrome trace events, which Perfetto and chrome://tracing open).

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/log.hpp"

namespace kiln {

// How the build ended, for the summary.
struct BuildOutcome {
    bool succeeded = false;
    std::string image_digest;  // on success
    std::string error;         // on failure
};

class BuildReport {
public:
    // `start`: when the build started, time zero of the trace.
    explicit BuildReport(std::chrono::system_clock::time_point start = std::chrono::system_clock::now());

    // Takes in one record. Thread-safe, as the reads below are: a thread may still log while the build's end
    // reads the report.
    void add(const LogRecord& record);

    // The summary: one line per step, stage by stage, then the time by phase.
    std::vector<std::string> summary_lines() const;
    // The summary as --summary-file holds it.
    nlohmann::ordered_json summary(const BuildOutcome& outcome) const;
    // The build as Chrome trace events: one slice per stage (its row), per step within it, and per pull,
    // extraction, layer written, push and build phase (rows of their own, a row more for each at once).
    nlohmann::json trace() const;

private:
    struct Step {
        std::string stage;
        std::string step;
        std::string title;
        std::string instruction;
        std::chrono::system_clock::time_point start;
        std::optional<std::chrono::system_clock::time_point> end;
        double seconds = 0;
        std::string cache;
        std::string cache_source;
        std::string layer_digest;
        std::int64_t layer_size = -1;
        double commit_seconds = 0;
    };
    struct Slice {
        std::string row;  // activity: "pull", "extract", "layer", "push", "phase"
        std::string name;
        std::chrono::system_clock::time_point start;
        std::chrono::system_clock::time_point end;
        nlohmann::json args;
    };
    Step* find_step(const LogPlace& place);
    // The steps stage by stage, stages in the order they started.
    std::vector<const Step*> by_stage() const;
    std::map<std::string, double> phase_seconds() const;

    std::chrono::system_clock::time_point m_start;
    std::vector<Step> m_steps;
    std::vector<Slice> m_slices;
    std::map<std::string, double> m_totals;  // by activity: pull, extract, run, compress
    mutable std::mutex m_mutex;              // guards the three above
};

// Writes `document` to `path` atomically; `flag` names the option in the error.
Status write_json_file(const std::string& path, const nlohmann::json& document, const std::string& flag);
Status write_json_file(const std::string& path, const nlohmann::ordered_json& document,
                       const std::string& flag);

}  // namespace kiln
