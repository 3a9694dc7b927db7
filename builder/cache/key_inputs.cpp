#include "builder/cache/key_inputs.hpp"

#include <set>

#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

using nlohmann::json;

constexpr size_t k_names_listed = 5;

// "a, b, c (and 4 more)".
std::string list_names(const std::vector<std::string>& names) {
    std::vector<std::string> shown(names.begin(), names.begin() + std::min(names.size(), k_names_listed));
    std::string text = join(shown, ", ");
    if (names.size() > shown.size()) text += str_cat(" (and ", names.size() - shown.size(), " more)");
    return text;
}

std::string variable_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// The variables whose entries differ between two "environment" values (JSON arrays of "NAME=value").
std::vector<std::string> changed_variables(const std::string& now, const std::string& before) {
    std::map<std::string, std::string> a, b;
    for (const auto& entry : json::parse(now, nullptr, false)) if (entry.is_string()) a[variable_name(entry)] = entry;
    for (const auto& entry : json::parse(before, nullptr, false)) if (entry.is_string()) b[variable_name(entry)] = entry;
    std::set<std::string> names;
    for (const auto& [name, value] : a) if (!b.contains(name) || b[name] != value) names.insert(name);
    for (const auto& [name, value] : b) if (!a.contains(name)) names.insert(name);
    return {names.begin(), names.end()};
}

std::string shown_read(const std::string& name) {
    return name.starts_with("context:") ? name.substr(8) : name;
}

}  // namespace

Digest KeyInputs::key() const {
    json document = {{"kiln cache key", 1}, {"parent", parent}, {"build", build}, {"reads", reads}};
    json fields = json::array();
    for (const auto& [name, value] : step) fields.push_back({name, value});
    document["step"] = fields;
    return Digest::from_sha256_hex(sha256_hex(document.dump()));
}

std::string KeyInputs::difference_from(const KeyInputs& before) const {
    std::vector<std::string> reasons;
    if (base != before.base && parent != before.parent)
        reasons.push_back(str_cat("the base image changed (", before.base, " → ", base, ")"));
    else if (parent != before.parent)
        reasons.emplace_back("the layers before it changed");
    std::map<std::string, std::string> old_fields(before.step.begin(), before.step.end());
    for (const auto& [name, value] : step) {
        auto old = old_fields.find(name);
        if (old != old_fields.end() && old->second == value) continue;
        if (name == "environment" && old != old_fields.end()) {
            reasons.push_back(str_cat("ARG or ENV changed: ", list_names(changed_variables(value, old->second))));
        } else {
            reasons.push_back(str_cat("its ", name, " changed"));
        }
    }
    std::vector<std::string> files;
    for (const auto& [name, digest] : reads) {
        auto old = before.reads.find(name);
        if (old == before.reads.end() || old->second != digest) files.push_back(shown_read(name));
    }
    for (const auto& [name, digest] : before.reads)
        if (!reads.contains(name)) files.push_back(shown_read(name) + " (gone)");
    if (!files.empty()) reasons.push_back(str_cat("what it reads changed: ", list_names(files)));
    if (build != before.build) reasons.emplace_back("the build's layer options or platform changed");
    if (reasons.empty()) reasons.emplace_back("its key changed");
    return join(reasons, "; ");
}

json KeyInputs::to_json() const {
    json fields = json::array();
    for (const auto& [name, value] : step) fields.push_back({name, value});
    return {{"parent", parent}, {"step", fields}, {"build", build}, {"reads", reads}, {"base", base}};
}

Result<KeyInputs> KeyInputs::from_json(const json& document) {
    try {
        KeyInputs inputs;
        inputs.parent = document.at("parent").get<std::vector<std::string>>();
        for (const auto& field : document.at("step")) inputs.step.emplace_back(field.at(0), field.at(1));
        inputs.build = document.at("build").get<std::string>();
        inputs.reads = document.at("reads").get<std::map<std::string, std::string>>();
        inputs.base = document.at("base").get<std::string>();
        return inputs;
    } catch (const json::exception& e) {
        return fail(str_cat("a malformed record of a step's inputs: ", e.what()));
    }
}

}  // namespace kiln
