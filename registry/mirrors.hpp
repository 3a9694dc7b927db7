#pragma once
// Where to pull an image from: Kaniko's --registry-mirror (for docker.io) and --registry-map (any registry)
// turn one reference into the list of places to try, in order, ending with the original registry unless
// --skip-default-registry-fallback says not to.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "registry/reference.hpp"

namespace kiln {

// A registry to pull from instead: host[:port], optionally with a repository prefix ("mirror.io/dockerhub").
struct RegistryMirror {
    std::string host;
    std::string path_prefix;
};

class RegistryRoutes {
public:
    // `mirror` is a --registry-mirror value: host[:port][/prefix], with or without http(s)://.
    Status add_mirror(std::string_view mirror);
    // `map` is a --registry-map value: "from=to[;from=to…]", where `to` is as for a mirror.
    Status add_map(std::string_view map);
    void set_fallback(bool fallback) { m_fallback = fallback; }

    // Where to look for `reference`: each mirror of its registry, in the order given, then the reference itself
    // unless fallback is off. Never empty for a registry without mirrors.
    std::vector<Reference> candidates(const Reference& reference) const;
    bool empty() const { return m_routes.empty(); }

private:
    Status add_route(std::string_view from, std::string_view to, std::string_view flag);

    std::vector<std::pair<std::string, RegistryMirror>> m_routes;  // canonical source registry → mirror
    bool m_fallback = true;
};

}  // namespace kiln
