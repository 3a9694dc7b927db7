#pragma once
// The Tekton Task in deploy/ as a TaskRun would see it: the params' defaults and one step's args and volume
// mounts, read by a line scanner for the block style the Task is written in (not a YAML parser: a shape it does
// not know leaves fields empty, and the tests that use it fail rather than guess).

#include <map>
#include <string>
#include <vector>

namespace kiln::test {

struct TaskStep {
    std::vector<std::string> args;
    std::map<std::string, std::string> volume_mounts;  // volume name → mountPath
};

struct TaskFile {
    std::map<std::string, std::string> defaults;
    TaskStep step;
};

TaskFile read_task(const std::string& text, const std::string& step_name);

// `text` with every `from` replaced by `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to);

}  // namespace kiln::test
