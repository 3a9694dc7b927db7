#pragma once
// What a step's cache key covers, kept whole so that a later miss can say which part changed. The key covers
// exactly what determines the step's layer: the content it starts from (the image's diff_ids so far, not the
// keys of the steps before, so a rebuilt step that made the same bytes does not invalidate the ones after it),
// the step as expanded (its words, environment, user, mounts), what it reads (the files a COPY selects, a bind
// mount's tree, a stage's or an image's content), and the build options that shape a layer's bytes. Secret
// values and cache-mount contents are never part of it.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "images/digest.hpp"

namespace kiln {

struct KeyInputs {
    std::vector<std::string> parent;  // diff_ids of the image before the step, bottom first, empty layers left out
    std::vector<std::pair<std::string, std::string>> step;  // step_fields(): name → JSON value
    std::string build;  // the platform and the options that shape a layer's bytes
    // What the step reads, by name ("context:src/main.c", "stage 0", "image alpine:3"): a content digest.
    std::map<std::string, std::string> reads;
    // For explanations only, outside the key: the stage's base ("sha256:…" of an image's manifest, "scratch",
    // "stage 0").
    std::string base;

    // The cache key: sha256 over everything above but `base`.
    Digest key() const;
    // Why this step's key differs from `before`'s, for the log: "ARG or ENV changed: VERSION", "the files
    // changed: src/a.c, src/b.c (and 3 more)", "the base image changed", "the layers before it changed", …
    std::string difference_from(const KeyInputs& before) const;

    nlohmann::json to_json() const;
    static Result<KeyInputs> from_json(const nlohmann::json& json);
};

}  // namespace kiln
