// Fuzzes WWW-Authenticate challenges, which come from any registry kiln talks to, and what the token flow
// does with a Bearer challenge before it sends anything: the realm resolved as a URL, its origin, the query
// built. Input: the header value.

#include <cctype>
#include <string>
#include <string_view>

#include "registry/auth.hpp"
#include "registry/http.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

bool has_upper_case(std::string_view text) {
    for (char c : text)
        if (std::isupper(static_cast<unsigned char>(c))) return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    auto challenges = parse_www_authenticate(fuzz::as_text(data, size));
    if (!challenges) {
        (void)challenges.error().message();
        return 0;
    }
    for (const AuthChallenge& challenge : *challenges) {
        fuzz::require(!has_upper_case(challenge.scheme), "schemes are lowercased");
        for (const auto& [name, value] : challenge.params)
            fuzz::require(!has_upper_case(name) && challenge.param(name) == value,
                          "parameter names are lowercased");
        if (challenge.scheme != "bearer") continue;
        std::string realm = challenge.param("realm");
        auto url = resolve_url(realm, realm);
        if (!url) continue;
        (void)url_origin(*url);
        auto with_scope =
            append_query(*url, "scope", repository_scope(challenge.param("scope"), RepositoryAccess::push));
        if (with_scope) (void)append_query(*with_scope, "service", challenge.param("service"));
    }
    return 0;
}
