#pragma once
// ARG and ENV scoping as Docker defines it: ARGs before the first FROM are visible only in FROM lines until a
// stage declares them again; inside a stage, declared ARGs and the image's ENV are visible, ENV winning.

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "builder/sandbox/sandbox.hpp"
#include "dockerfile-parser/shell_expand.hpp"
#include "dockerfile-parser/stages.hpp"
#include "images/image_config.hpp"
#include "images/platform.hpp"

namespace kiln {

// The --build-arg values, and which of them the Dockerfile used. Thread-safe.
class BuildArgs {
public:
    explicit BuildArgs(const std::vector<std::pair<std::string, std::string>>& flags);
    // The value given for `name` (later flags win); marks it used.
    std::optional<std::string> take(const std::string& name);
    // Names given on the command line that no ARG declared, in flag order. Proxy variables are never "unused":
    // they reach every RUN without a declaration.
    std::vector<std::string> unused() const;
    // The proxy variables given as build args (HTTP_PROXY, https_proxy, NO_PROXY, …) as "K=V", in flag order.
    std::vector<std::string> proxy_environment() const;

private:
    std::map<std::string, std::string> m_values;
    std::vector<std::string> m_order;
    std::set<std::string> m_used;
    mutable std::mutex m_mutex;  // stages built concurrently declare ARGs at the same time
};

// The platforms of a build: the one it targets (--custom-platform, else this machine) and the one it runs on.
struct BuildPlatforms {
    Platform target;
    Platform build;
};

// ARGs declared before the first FROM, with their values, plus BuildKit's predefined platform ARGs
// (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT),
// which FROM lines see without a declaration and stages see once they declare them.
class MetaArgs {
public:
    // Evaluates the meta ARGs in order: a build arg overrides a default; defaults may use earlier meta ARGs.
    static Result<MetaArgs> evaluate(const dockerfile::Dockerfile& dockerfile, BuildArgs& build_args,
                                     const BuildPlatforms& platforms);
    std::optional<std::string> value(const std::string& name) const;
    // A lookup for expanding FROM lines.
    dockerfile::EnvLookup lookup() const;

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> m_args;
};

// The ARGs a stage has declared so far.
class StageArgs {
public:
    // Declares ARG name[=default] (default already expanded): the build arg wins, then the default, then the
    // meta ARG of the same name. An ARG with none of them is declared but unset.
    void declare(const std::string& name, std::optional<std::string> expanded_default, BuildArgs& build_args,
                 const MetaArgs& meta);

    // Lookup for expanding instruction words: the image's ENV first, then the stage's ARGs.
    dockerfile::EnvLookup expansion_lookup(const RunConfig& config) const;
    // The environment of a RUN: the image's ENV plus the set ARGs that ENV does not shadow, plus the proxy
    // build args (which stay out of the image and its history).
    std::vector<std::string> run_environment(const RunConfig& config) const;
    // The proxy variables every RUN of this stage gets (BuildArgs::proxy_environment()).
    void set_proxy_environment(std::vector<std::string> proxies) { m_proxies = std::move(proxies); }

    const std::vector<std::pair<std::string, std::optional<std::string>>>& declared() const { return m_args; }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> m_args;
    std::vector<std::string> m_proxies;
};

// True for the proxy variables Docker passes to RUN without an ARG (any case): HTTP_PROXY, HTTPS_PROXY,
// FTP_PROXY, NO_PROXY, ALL_PROXY.
bool is_proxy_arg(std::string_view name);

}  // namespace kiln
