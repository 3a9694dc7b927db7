#include "registry/reference.hpp"

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr std::string_view k_docker_hub = "docker.io";
constexpr size_t k_max_name_length = 255;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool valid_path_component(std::string_view component) {
    size_t i = 0;
    while (true) {
        size_t run = i;
        while (i < component.size() && is_lower_alnum(component[i])) ++i;
        if (i == run) return false;
        if (i == component.size()) return true;
        if (component[i] == '.') {
            ++i;
        } else if (component[i] == '_') {
            ++i;
            if (i < component.size() && component[i] == '_') ++i;
        } else if (component[i] == '-') {
            while (i < component.size() && component[i] == '-') ++i;
        } else {
            return false;
        }
    }
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view component) {
    if (component.empty() || !is_alnum(component.front()) || !is_alnum(component.back())) return false;
    for (char c : component)
        if (!is_alnum(c) && c != '-') return false;
    return true;
}

// host[:port], where host is dot-separated domain components or a bracketed IPv6 address.
bool valid_domain(std::string_view domain) {
    std::string_view host = domain;
    std::string_view port;
    if (domain.starts_with('[')) {
        size_t close = domain.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (char c : domain.substr(1, close - 1))
            if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':')) return false;
        std::string_view after = domain.substr(close + 1);
        if (after.empty()) return true;
        if (!after.starts_with(':')) return false;
        port = after.substr(1);
        host = {};
    } else if (size_t colon = domain.find(':'); colon != std::string_view::npos) {
        host = domain.substr(0, colon);
        port = domain.substr(colon + 1);
        if (port.empty()) return false;
    }
    for (char c : port)
        if (!is_digit(c)) return false;
    if (!domain.starts_with('['))
        for (const std::string& component : split(host, '.'))
            if (!valid_domain_component(component)) return false;
    return true;
}

bool is_hex_id(std::string_view text) {
    if (text.size() != 64) return false;
    for (char c : text)
        if (!is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
    return true;
}

bool has_uppercase(std::string_view text) {
    for (char c : text)
        if (c >= 'A' && c <= 'Z') return true;
    return false;
}

}  // namespace

bool is_valid_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 128) return false;
    auto word = [](char c) { return is_alnum(c) || c == '_'; };
    if (!word(tag.front())) return false;
    for (char c : tag)
        if (!word(c) && c != '.' && c != '-') return false;
    return true;
}

Result<Reference> Reference::parse(std::string_view text) {
    auto invalid = [&](std::string_view why) { return fail(str_cat("invalid reference \"", text, "\": ", why)); };
    if (text.empty()) return invalid("empty");
    if (is_hex_id(text)) return invalid("a 64-character hexadecimal string is an image ID; use name@sha256:<hex>");

    Reference reference;
    std::string_view rest = text;
    if (size_t at = rest.find('@'); at != std::string_view::npos) {
        auto digest = Digest::parse(rest.substr(at + 1));
        if (!digest) return invalid(digest.error().message());
        reference.m_digest = std::move(*digest);
        rest = rest.substr(0, at);
    }

    // Docker's rule: the first component is a registry only if it looks like a host (a dot, a port, "localhost",
    // or uppercase letters, which no repository may contain).
    std::string_view path = rest;
    size_t slash = rest.find('/');
    std::string_view first = slash == std::string_view::npos ? std::string_view() : rest.substr(0, slash);
    if (slash == std::string_view::npos ||
        (first.find_first_of(".:") == std::string_view::npos && first != "localhost" && !has_uppercase(first))) {
        reference.m_registry = k_docker_hub;
    } else {
        reference.m_registry = first;
        path = rest.substr(slash + 1);
    }
    if (reference.m_registry == "index.docker.io") reference.m_registry = k_docker_hub;
    if (!valid_domain(reference.m_registry)) return invalid(str_cat("invalid registry \"", reference.m_registry, "\""));

    if (size_t colon = path.rfind(':'); colon != std::string_view::npos) {
        reference.m_tag = path.substr(colon + 1);
        path = path.substr(0, colon);
        if (!is_valid_tag(reference.m_tag)) return invalid(str_cat("invalid tag \"", reference.m_tag, "\""));
    }
    if (path.empty()) return invalid("no repository name");
    for (const std::string& component : split(path, '/')) {
        if (valid_path_component(component)) continue;
        if (has_uppercase(component)) return invalid("repository name must be lowercase");
        return invalid(str_cat("invalid repository name \"", path, "\""));
    }
    reference.m_repository = path;
    if (reference.m_registry == k_docker_hub && path.find('/') == std::string_view::npos)
        reference.m_repository = str_cat("library/", path);
    // Docker measures the normalized name, "library/" included.
    if (reference.name().size() > k_max_name_length)
        return invalid(str_cat("name longer than ", k_max_name_length, " characters"));
    if (reference.m_tag.empty() && !reference.m_digest) reference.m_tag = "latest";
    return reference;
}

std::string Reference::name() const { return str_cat(m_registry, "/", m_repository); }

std::string Reference::str() const { return str_cat(m_registry, "/", repository_str()); }

std::string Reference::repository_str() const {
    std::string text = m_repository;
    if (!m_tag.empty()) text += ":" + m_tag;
    if (m_digest) text += "@" + m_digest->str();
    return text;
}

std::string Reference::identifier() const { return m_digest ? m_digest->str() : m_tag; }

Result<Reference> Reference::with_tag(std::string_view tag) const {
    if (!is_valid_tag(tag)) return fail(str_cat("invalid tag \"", tag, "\" for ", name()));
    Reference reference = *this;
    reference.m_tag = tag;
    reference.m_digest.reset();
    return reference;
}

Reference Reference::with_digest(const Digest& digest) const {
    Reference reference = *this;
    reference.m_digest = digest;
    return reference;
}

std::string Reference::api_host() const {
    return m_registry == k_docker_hub ? std::string("registry-1.docker.io") : m_registry;
}

}  // namespace kiln
