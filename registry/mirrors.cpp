#include "registry/mirrors.hpp"

#include "common/strings.hpp"
#include "registry/client.hpp"

namespace kiln {
namespace {

Result<RegistryMirror> parse_mirror(std::string_view text, std::string_view flag) {
    std::string_view value = trim(text);
    for (std::string_view scheme : {"https://", "http://"})
        if (value.starts_with(scheme)) value.remove_prefix(scheme.size());
    while (value.ends_with('/')) value.remove_suffix(1);
    size_t slash = value.find('/');
    RegistryMirror mirror{.host = std::string(value.substr(0, slash))};
    if (slash != std::string_view::npos) mirror.path_prefix = std::string(value.substr(slash + 1));
    // The mirror must make a valid reference: check it with a repository under it.
    std::string probe = str_cat(mirror.host, "/", mirror.path_prefix.empty() ? "" : mirror.path_prefix + "/", "x");
    bool host_like = mirror.host.find('.') != std::string::npos || mirror.host.find(':') != std::string::npos ||
                     mirror.host == "localhost";
    if (!host_like)
        return fail(str_cat(flag, " \"", text, "\": expected a registry host[:port][/path]"));
    if (auto parsed = Reference::parse(probe); !parsed || parsed->registry() != mirror.host)
        return fail(str_cat(flag, " \"", text, "\": not a valid registry host[:port][/path]"));
    return mirror;
}

}  // namespace

Status RegistryRoutes::add_route(std::string_view from, std::string_view to, std::string_view flag) {
    KILN_ASSIGN(RegistryMirror mirror, parse_mirror(to, flag));
    std::string source = canonical_registry(std::string(trim(from)));
    if (source.empty()) return fail(str_cat(flag, ": empty registry before '='"));
    m_routes.emplace_back(std::move(source), std::move(mirror));
    return {};
}

Status RegistryRoutes::add_mirror(std::string_view mirror) { return add_route("docker.io", mirror, "--registry-mirror"); }

Status RegistryRoutes::add_map(std::string_view map) {
    for (const std::string& entry : split(map, ';')) {
        if (trim(entry).empty()) continue;
        size_t equals = entry.find('=');
        if (equals == std::string::npos)
            return fail(str_cat("--registry-map \"", entry, "\": expected FROM=TO (entries separated by ';')"));
        KILN_TRY(add_route(entry.substr(0, equals), entry.substr(equals + 1), "--registry-map"));
    }
    return {};
}

std::vector<Reference> RegistryRoutes::candidates(const Reference& reference) const {
    std::vector<Reference> candidates;
    bool routed = false;
    for (const auto& [source, mirror] : m_routes) {
        if (source != reference.registry()) continue;
        routed = true;
        std::string repository = mirror.path_prefix.empty() ? reference.repository()
                                                            : str_cat(mirror.path_prefix, "/", reference.repository());
        std::string text = str_cat(mirror.host, "/", repository);
        if (!reference.tag().empty()) text += ":" + reference.tag();
        if (reference.digest()) text += "@" + reference.digest()->str();
        if (auto parsed = Reference::parse(text)) candidates.push_back(std::move(*parsed));
    }
    if (!routed || m_fallback) candidates.push_back(reference);
    return candidates;
}

}  // namespace kiln
