#include "registry/credentials.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "common/base64.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "common/stream.hpp"
#include "common/strings.hpp"
#include "registry/client.hpp"

namespace kiln {
namespace {

constexpr size_t k_config_limit = 4 << 20;
constexpr std::string_view k_docker_hub = "docker.io";
constexpr std::string_view k_docker_hub_server_url = "https://index.docker.io/v1/";
constexpr std::string_view k_helper_prefix = "docker-credential-";
// What helpers print on stdout (with a non-zero exit) when they hold nothing for a server.
constexpr std::string_view k_helper_not_found = "credentials not found";
// Docker's marker for an identity token in a helper's answer.
constexpr std::string_view k_identity_token_username = "<token>";

// The helper name must name a program in PATH, never a path.
bool is_plain_helper_name(std::string_view name) {
    if (name.empty() || name == "." || name == "..") return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

// The executable `program` in the directories of `path`; empty entries (the current directory) are skipped.
std::string find_in_path(std::string_view path, const std::string& program) {
    for (const std::string& directory : split(path, ':')) {
        if (directory.empty()) continue;
        std::string candidate = str_cat(directory, "/", program);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

Result<std::string> string_member(const nlohmann::json& object, const char* name, std::string_view where) {
    auto found = object.find(name);
    if (found == object.end() || found->is_null()) return std::string();
    if (!found->is_string()) return fail(str_cat(where, ".", name, " is not a string"));
    return found->get<std::string>();
}

// One `auths` entry; `where` names it (`auths["docker.io"]`) in errors, which never quote a value.
Result<Credential> parse_auth_entry(const nlohmann::json& entry, std::string_view where) {
    if (!entry.is_object()) return fail(str_cat(where, " is not an object"));
    Credential credential;
    KILN_ASSIGN(credential.username, string_member(entry, "username", where));
    KILN_ASSIGN(credential.password, string_member(entry, "password", where));
    KILN_ASSIGN(credential.identity_token, string_member(entry, "identitytoken", where));
    KILN_ASSIGN(std::string auth, string_member(entry, "auth", where));
    if (!auth.empty()) {
        std::optional<std::string> decoded = base64_decode(trim(auth));
        if (!decoded) return fail(str_cat(where, ".auth is not valid base64"));
        size_t colon = decoded->find(':');
        if (colon == std::string::npos) return fail(str_cat(where, ".auth is not base64 of \"username:password\""));
        // As the docker CLI, `auth` wins over the separate fields; some tools pad the password with NULs.
        credential.username = decoded->substr(0, colon);
        credential.password = decoded->substr(colon + 1);
        while (!credential.password.empty() && credential.password.back() == '\0') credential.password.pop_back();
    }
    return credential;
}

bool is_empty(const Credential& credential) {
    return credential.username.empty() && credential.password.empty() && credential.identity_token.empty();
}

}  // namespace

CredentialEnvironment CredentialEnvironment::of_this_process() {
    auto value = [](const char* name) {
        const char* found = std::getenv(name);
        return found ? std::string(found) : std::string();
    };
    return {.docker_config = value("DOCKER_CONFIG"), .home = value("HOME"), .path = value("PATH")};
}

std::string normalize_registry_key(std::string_view key) {
    std::string_view host = trim(key);
    if (size_t scheme = host.find("://"); scheme != std::string_view::npos) host.remove_prefix(scheme + 3);
    if (size_t slash = host.find('/'); slash != std::string_view::npos) host = host.substr(0, slash);
    return canonical_registry(to_lower(host));
}

std::string credential_helper_server_url(std::string_view registry) {
    std::string normalized = normalize_registry_key(registry);
    return normalized == k_docker_hub ? std::string(k_docker_hub_server_url) : normalized;
}

std::vector<std::string> docker_config_candidates(const CredentialEnvironment& environment) {
    std::vector<std::string> candidates;
    if (!environment.docker_config.empty()) {
        candidates.push_back(str_cat(environment.docker_config, "/config.json"));
    } else {
        if (!environment.home.empty()) candidates.push_back(str_cat(environment.home, "/.docker/config.json"));
        if (!environment.kaniko_config.empty()) candidates.push_back(environment.kaniko_config);
    }
    return candidates;
}

Result<std::shared_ptr<DockerConfigCredentials>> DockerConfigCredentials::from_environment(
    const CredentialEnvironment& environment) {
    if (environment.handed_config_fd >= 0) {
        ::lseek(environment.handed_config_fd, 0, SEEK_SET);  // each read takes the whole file
        FdReader reader(environment.handed_config_fd, environment.handed_config_path);
        KILN_ASSIGN(std::string text, with_context(read_all(reader, k_config_limit),
                                                   str_cat("reading the Docker config ", environment.handed_config_path)));
        return from_json(text, environment.handed_config_path, environment.path);
    }
    std::vector<std::string> candidates;
    if (!environment.handed_no_config) candidates = docker_config_candidates(environment);
    for (const std::string& candidate : candidates) {
        Result<std::string> text = read_file(candidate, k_config_limit);
        if (!text) {
            int err = text.error().errno_value();
            if (err == ENOENT || err == ENOTDIR) continue;
            return fail(std::move(text.error()).context("reading the Docker config"));
        }
        return from_json(*text, candidate, environment.path);
    }
    log_debug("no Docker config.json (", join(candidates, ", "), "): registries are accessed anonymously");
    auto anonymous = std::shared_ptr<DockerConfigCredentials>(new DockerConfigCredentials());
    anonymous->m_helper_path = environment.path;
    return anonymous;
}

Result<std::shared_ptr<DockerConfigCredentials>> DockerConfigCredentials::from_file(const std::string& path,
                                                                                    std::string helper_path) {
    KILN_ASSIGN(std::string text, with_context(read_file(path, k_config_limit), "reading the Docker config"));
    return from_json(text, path, std::move(helper_path));
}

Result<std::shared_ptr<DockerConfigCredentials>> DockerConfigCredentials::from_json(std::string_view text,
                                                                                    std::string source,
                                                                                    std::string helper_path) {
    auto credentials = std::shared_ptr<DockerConfigCredentials>(new DockerConfigCredentials());
    credentials->m_source = source;
    credentials->m_helper_path = std::move(helper_path);
    std::string what = str_cat("Docker config ", source);

    nlohmann::json json;
    try {
        json = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {
        // The parser's own message quotes the bytes it read last, which may be a secret: give only the offset.
        return fail(str_cat(what, ": not valid JSON (at byte ", error.byte, ")"));
    } catch (const nlohmann::json::exception&) {
        // A number too large for a double (out_of_range 406); the message quotes it, so it is not repeated.
        return fail(str_cat(what, ": not valid JSON (a number out of range)"));
    }
    if (!json.is_object()) return fail(str_cat(what, ": not a JSON object"));

    if (auto auths = json.find("auths"); auths != json.end() && !auths->is_null()) {
        if (!auths->is_object()) return fail(str_cat(what, ": \"auths\" is not an object"));
        for (const auto& [key, entry] : auths->items()) {
            KILN_ASSIGN(Credential credential,
                        with_context(parse_auth_entry(entry, str_cat("auths[\"", printable_excerpt(key), "\"]")), what));
            credentials->m_auths[normalize_registry_key(key)].push_back({key, std::move(credential)});
        }
    }
    if (auto helpers = json.find("credHelpers"); helpers != json.end() && !helpers->is_null()) {
        if (!helpers->is_object()) return fail(str_cat(what, ": \"credHelpers\" is not an object"));
        for (const auto& [key, name] : helpers->items()) {
            std::string where = str_cat("credHelpers[\"", printable_excerpt(key), "\"]");
            if (!name.is_string() || !is_plain_helper_name(name.get<std::string>()))
                return fail(str_cat(what, ": ", where, " is not a plain helper name"));
            credentials->m_cred_helpers[normalize_registry_key(key)] = name.get<std::string>();
        }
    }
    KILN_ASSIGN(credentials->m_creds_store, with_context(string_member(json, "credsStore", "config"), what));
    if (!credentials->m_creds_store.empty() && !is_plain_helper_name(credentials->m_creds_store))
        return fail(str_cat(what, ": \"credsStore\" is not a plain helper name"));
    return credentials;
}

Result<std::optional<Credential>> DockerConfigCredentials::credential_for(std::string_view registry) {
    std::string normalized = normalize_registry_key(registry);
    std::lock_guard lock(m_lookup_mutex);
    if (auto found = m_cache.find(normalized); found != m_cache.end()) return found->second;

    std::optional<Credential> credential;
    if (std::string helper = helper_for(normalized); !helper.empty()) {
        KILN_ASSIGN(credential, run_helper(helper, normalized));
    } else {
        credential = from_auths(normalized);
    }
    log_debug(credential ? "using credentials" : "no credentials", " for ", normalized,
              m_source.empty() ? std::string() : str_cat(" from ", m_source));
    m_cache[normalized] = credential;
    return credential;
}

std::string DockerConfigCredentials::helper_for(const std::string& registry) const {
    if (auto found = m_cred_helpers.find(registry); found != m_cred_helpers.end()) return found->second;
    return m_creds_store;
}

std::optional<Credential> DockerConfigCredentials::from_auths(const std::string& registry) const {
    auto found = m_auths.find(registry);
    if (found == m_auths.end()) return std::nullopt;
    // Several keys may name one registry ("https://index.docker.io/v1/" and "docker.io"): prefer the key the
    // docker CLI writes for it, then the first in key order.
    const std::string canonical = credential_helper_server_url(registry);
    const AuthEntry* chosen = &found->second.front();
    for (const AuthEntry& entry : found->second)
        if (entry.key == canonical) chosen = &entry;
    if (is_empty(chosen->credential)) return std::nullopt;
    return chosen->credential;
}

Result<std::optional<Credential>> DockerConfigCredentials::run_helper(const std::string& helper,
                                                                      const std::string& registry) const {
    std::string program = str_cat(k_helper_prefix, helper);
    std::string what = str_cat("credential helper ", program, " for ", registry);
    std::string executable = find_in_path(m_helper_path, program);
    if (executable.empty()) return fail(str_cat(what, ": ", program, " is not an executable in PATH"));

    log_debug("running ", program, " get for ", registry);
    ProcessOptions options{.stdin_bytes = credential_helper_server_url(registry),
                           .timeout = m_helper_limits.timeout,
                           .output_limit = m_helper_limits.output_limit};
    KILN_ASSIGN(ProcessResult result, with_context(run_process({executable, "get"}, options), what));

    if (result.exit_code != 0) {
        // The protocol puts a failure's message on stdout; "credentials not found" means anonymous access.
        if (result.stdout_bytes.find(k_helper_not_found) != std::string::npos) return std::nullopt;
        std::string message = printable_excerpt(result.stderr_bytes);
        // A JSON stdout may carry a secret even on failure: quote only a plain-text one.
        if (message.empty() && result.stdout_bytes.find('{') == std::string::npos)
            message = printable_excerpt(result.stdout_bytes);
        return fail(str_cat(what, ": exited with status ", result.exit_code,
                            message.empty() ? std::string() : str_cat(": ", message)));
    }

    // Never quote stdout from here on: it holds the secret.
    nlohmann::json json = nlohmann::json::parse(result.stdout_bytes, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return fail(str_cat(what, ": the answer is not a JSON object"));
    auto field = [&](const char* name) -> Result<std::string> {
        auto found = json.find(name);
        if (found == json.end() || found->is_null()) return std::string();
        if (!found->is_string()) return fail(str_cat(what, ": \"", name, "\" in the answer is not a string"));
        return found->get<std::string>();
    };
    KILN_ASSIGN(std::string username, field("Username"));
    KILN_ASSIGN(std::string secret, field("Secret"));
    if (username.empty() && secret.empty()) return std::nullopt;
    if (username == k_identity_token_username) return Credential{.identity_token = std::move(secret)};
    return Credential{.username = std::move(username), .password = std::move(secret)};
}

}  // namespace kiln
