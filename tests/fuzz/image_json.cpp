// Fuzzes the OCI/Docker JSON documents a registry or a layout hands kiln: each input is parsed as a manifest,
// an index, an image config and a descriptor. What parses must survive kiln's canonical serialization
// unchanged, since kiln pushes and digests that form.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "images/descriptor.hpp"
#include "images/image_config.hpp"
#include "images/index.hpp"
#include "images/manifest.hpp"
#include "images/platform.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

// Parses `bytes` as a T; what parses is serialized, parsed again and must come back equal.
template <class T>
void round_trip(std::string_view bytes, const char* promise) {
    auto parsed = T::parse(bytes);
    if (!parsed) {
        (void)parsed.error().message();
        return;
    }
    std::string canonical = parsed->serialize();
    auto again = T::parse(canonical);
    kiln::fuzz::require(again && *again == *parsed, promise);
    kiln::fuzz::require(again->serialize() == canonical, promise);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    std::string_view bytes = fuzz::as_text(data, size);

    round_trip<Manifest>(bytes, "a manifest survives its canonical form");
    round_trip<ImageConfig>(bytes, "an image config survives its canonical form");
    round_trip<Index>(bytes, "an index survives its canonical form");
    if (auto index = Index::parse(bytes)) {
        for (const char* wanted : {"linux/amd64", "linux/arm64/v8", "linux/arm/v7"})
            if (auto platform = Platform::parse(wanted)) (void)index->select(*platform);
    }

    auto json = parse_json_document(bytes, "fuzz input");
    if (!json) return 0;
    if (auto descriptor = Descriptor::from_json(*json)) {
        auto again = Descriptor::from_json(descriptor->to_json());
        fuzz::require(again && *again == *descriptor, "a descriptor survives its JSON form");
    }
    if (auto platform = Platform::from_json(*json)) {
        (void)platform->str();
        auto again = Platform::from_json(platform->to_json());
        fuzz::require(again && *again == *platform, "a platform survives its JSON form");
    }
    return 0;
}
