#pragma once
// The stages of a Dockerfile by name and by number, as FROM, COPY --from, RUN --mount from= and --target name
// them. A map, not a scan: Dockerfiles with thousands of stages plan in linear time.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dockerfile-parser/stages.hpp"

namespace kiln {

class StageNames {
public:
    explicit StageNames(const dockerfile::Dockerfile& dockerfile);

    // The stage before `before` that `name` names: a stage name (case-insensitively) or, when `allow_number`,
    // a stage number. nullopt when it names none (it is then an image).
    std::optional<size_t> find(std::string_view name, size_t before, bool allow_number) const;
    // The names given with AS, in Dockerfile order.
    const std::vector<std::string>& names() const { return m_names; }

private:
    std::map<std::string, size_t, std::less<>> m_by_name;
    std::vector<std::string> m_names;
};

}  // namespace kiln
