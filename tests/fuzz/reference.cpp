// Fuzzes image references ("reg.io:5000/team/app:1@sha256:…") and the small grammars around them: digests,
// tags and platforms. A normalized reference must parse back to itself, since kiln writes it to result files
// and logs that users paste back in.

#include <string>
#include <string_view>

#include "images/digest.hpp"
#include "images/platform.hpp"
#include "registry/reference.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    std::string_view text = fuzz::as_text(data, size);

    (void)is_valid_tag(text);
    if (auto digest = Digest::parse(text)) {
        auto again = Digest::parse(digest->str());
        fuzz::require(again && *again == *digest, "a digest parses back to itself");
        (void)digest->short_str();
    }
    if (auto platform = Platform::parse(text)) {
        auto again = Platform::parse(platform->str());
        fuzz::require(again && again->str() == platform->str(), "a platform's text parses back to itself");
    }

    auto reference = Reference::parse(text);
    if (!reference) {
        (void)reference.error().message();
        return 0;
    }
    (void)reference->name();
    (void)reference->repository_str();
    (void)reference->identifier();
    (void)reference->api_host();
    auto again = Reference::parse(reference->str());
    fuzz::require(again && *again == *reference, "a normalized reference parses back to itself");
    if (auto tagged = reference->with_tag("v1.2")) {
        fuzz::require(tagged->tag() == "v1.2" && !tagged->digest(),
                      "with_tag sets the tag and drops the digest");
    }
    if (reference->digest()) {
        Reference pinned = reference->with_digest(*reference->digest());
        fuzz::require(pinned == *reference, "pinning a reference to its own digest changes nothing");
    }
    return 0;
}
