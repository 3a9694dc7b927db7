// Fuzzes Docker's config.json as kiln reads credentials from it: parsing, key normalization and the lookup
// for every registry the file names (plus Docker Hub). Credential helpers are looked up in an empty PATH, so
// a helper entry fails the lookup instead of starting a process. Input: the config.json text.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/credentials.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

// The keys of the objects `auths` and `credHelpers`, which name registries.
std::vector<std::string> registry_keys(std::string_view text) {
    std::vector<std::string> keys;
    nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return keys;
    for (const char* section : {"auths", "credHelpers"}) {
        auto found = json.find(section);
        if (found == json.end() || !found->is_object()) continue;
        for (const auto& item : found->items()) keys.push_back(item.key());
    }
    return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    std::string_view text = fuzz::as_text(data, size);

    std::vector<std::string> registries{"docker.io", "index.docker.io", "127.0.0.1:5000"};
    for (const std::string& key : registry_keys(text)) {
        // Keys that are not host names do not normalize idempotently (" a, /b" → "a, "): only crashes count.
        std::string normalized = normalize_registry_key(key);
        (void)credential_helper_server_url(normalized);
        registries.push_back(key);
        registries.push_back(normalized);
    }

    auto credentials = DockerConfigCredentials::from_json(text, "config.json", /*helper_path=*/"");
    if (!credentials) {
        (void)credentials.error().message();
        return 0;
    }
    for (const std::string& registry : registries) {
        auto credential = (*credentials)->credential_for(registry);
        if (!credential) (void)credential.error().message();
    }
    return 0;
}
