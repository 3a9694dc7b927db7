#pragma once
// Small images for registry tests: a config and one layer (arbitrary bytes; registries do not look inside).

#include <string>

#include "common/stream.hpp"
#include "images/image_config.hpp"
#include "images/manifest.hpp"
#include "images/media_type.hpp"
#include "registry/client.hpp"

namespace kiln::test {

struct TestImage {
    std::string layer_bytes;
    Descriptor layer;
    std::string config_bytes;
    Descriptor config;
    std::string manifest_bytes;
    // The manifest's descriptor, with the platform, ready for an index.
    Descriptor manifest;
};

inline Descriptor describe(std::string_view media_type, std::string_view bytes) {
    return Descriptor{.media_type = std::string(media_type),
                      .digest = Digest::of_bytes(bytes),
                      .size = static_cast<std::int64_t>(bytes.size())};
}

inline TestImage make_test_image(const Platform& platform, std::string layer_bytes) {
    TestImage image;
    image.layer_bytes = std::move(layer_bytes);
    image.layer = describe(media_type::oci_layer, image.layer_bytes);
    ImageConfig config;
    config.os = platform.os;
    config.architecture = platform.architecture;
    config.variant = platform.variant;
    config.diff_ids = {image.layer.digest};  // an uncompressed layer is its own diff
    image.config_bytes = config.serialize();
    image.config = describe(media_type::oci_config, image.config_bytes);
    Manifest manifest{.media_type = std::string(media_type::oci_manifest), .config = image.config,
                      .layers = {image.layer}};
    image.manifest_bytes = manifest.serialize();
    image.manifest = describe(media_type::oci_manifest, image.manifest_bytes);
    image.manifest.platform = platform;
    return image;
}

// Pushes the config and layer blobs (not the manifest).
inline Status push_test_blobs(RegistryClient& client, const Reference& repository, const TestImage& image) {
    StringReader layer(image.layer_bytes);
    KILN_TRY(client.push_blob(repository, image.layer, layer));
    StringReader config(image.config_bytes);
    KILN_TRY(client.push_blob(repository, image.config, config));
    return {};
}

// Pushes the blobs and then the manifest under the reference's tag; returns the manifest digest.
inline Result<Digest> push_test_image(RegistryClient& client, const Reference& reference, const TestImage& image) {
    KILN_TRY(push_test_blobs(client, reference, image));
    return client.push_manifest(reference, media_type::oci_manifest, image.manifest_bytes);
}

}  // namespace kiln::test
