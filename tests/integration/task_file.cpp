#include "tests/integration/task_file.hpp"

#include <sstream>

#include "common/strings.hpp"

namespace kiln::test {
namespace {

size_t indentation(const std::string& line) { return line.find_first_not_of(' '); }

std::string unquoted(std::string value) {
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
        return value.substr(1, value.size() - 2);
    return value;
}

}  // namespace

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

TaskFile read_task(const std::string& text, const std::string& step_name) {
    TaskFile task;
    std::istringstream in(text);
    std::string line;
    std::string section;       // the spec-level key we are under ("params", "steps", …)
    std::string current_name;  // the last "- name:" seen in that section
    bool in_step = false;
    std::string step_list;  // "args" or "volumeMounts" inside the wanted step
    size_t list_indent = 0;
    std::string mount_name;  // the volume mount being read
    while (std::getline(in, line)) {
        if (line.empty() || line.find_first_not_of(' ') == std::string::npos || trim(line).starts_with("#")) continue;
        size_t indent = indentation(line);
        std::string content = std::string(trim(line));
        if (indent == 2 && content.ends_with(":")) {
            section = content.substr(0, content.size() - 1);
            in_step = false;
            step_list.clear();
            continue;
        }
        if (content.starts_with("- name: ") && indent == 4) {
            current_name = unquoted(content.substr(8));
            in_step = section == "steps" && current_name == step_name;
            step_list.clear();
            continue;
        }
        if (section == "params" && content.starts_with("default: "))
            task.defaults[current_name] = unquoted(content.substr(9));
        if (!in_step) continue;
        if (indent == 6 && content.ends_with(":")) {
            step_list = content.substr(0, content.size() - 1);
            list_indent = indent + 2;
            continue;
        }
        if (indent <= 6) {
            step_list.clear();
            continue;
        }
        if (step_list == "args" && indent == list_indent && content.starts_with("- "))
            task.step.args.push_back(unquoted(content.substr(2)));
        if (step_list == "volumeMounts") {
            if (content.starts_with("- name: ")) mount_name = unquoted(content.substr(8));
            if (content.starts_with("mountPath: ")) task.step.volume_mounts[mount_name] = unquoted(content.substr(11));
        }
    }
    return task;
}

}  // namespace kiln::test
