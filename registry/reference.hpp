#pragma once
// Image references ("busybox", "reg.io:5000/team/app:1.2@sha256:…"), parsed and normalized the way docker does,
// so that a reference means the same image to kiln as to docker, Kaniko and skopeo.

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "images/digest.hpp"

namespace kiln {

class Reference {
public:
    // Parses and normalizes: no registry means docker.io (index.docker.io is the same), a one-component docker.io
    // repository gets "library/", and a reference with neither tag nor digest gets the tag "latest". Errors quote
    // the input.
    static Result<Reference> parse(std::string_view text);

    // The registry as written, host[:port]: "docker.io", "127.0.0.1:5000".
    const std::string& registry() const { return m_registry; }
    // The repository path: "library/busybox".
    const std::string& repository() const { return m_repository; }
    // The tag; empty when the reference names only a digest.
    const std::string& tag() const { return m_tag; }
    const std::optional<Digest>& digest() const { return m_digest; }

    // "docker.io/library/busybox".
    std::string name() const;
    // The full normalized reference: "docker.io/library/busybox:latest", "reg.io/a/b:1@sha256:…".
    std::string str() const;
    // The repository with its tag and/or digest, for messages: "library/busybox:latest".
    std::string repository_str() const;
    // What a pull addresses the manifest by: the digest when there is one (it wins over the tag), else the tag.
    std::string identifier() const;

    // The same repository with `tag` and no digest; an invalid tag is an error.
    Result<Reference> with_tag(std::string_view tag) const;
    // The same repository and tag, pinned to `digest` ("name:tag@digest", or "name@digest" without a tag).
    Reference with_digest(const Digest& digest) const;

    // The host[:port] that serves the registry's API: docker.io is served by registry-1.docker.io.
    std::string api_host() const;

    bool operator==(const Reference&) const = default;

private:
    std::string m_registry;
    std::string m_repository;
    std::string m_tag;
    std::optional<Digest> m_digest;
};

// True when `tag` matches docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool is_valid_tag(std::string_view tag);

}  // namespace kiln
