#pragma once
// An image under construction: a config and its layers. Immutable: every change returns a new Image.

#include <string>
#include <vector>

#include "images/blob_store.hpp"
#include "images/image_config.hpp"
#include "images/layer.hpp"
#include "images/manifest.hpp"

namespace kiln {

class Image {
public:
    // An image with no layers (FROM scratch) for `platform`.
    static Image empty(const Platform& platform);
    // `config.diff_ids` must list the layers' diffIDs in order.
    static Result<Image> create(ImageConfig config, std::vector<LayerPtr> layers);

    const ImageConfig& config() const { return m_config; }
    const std::vector<LayerPtr>& layers() const { return m_layers; }

    // Appends a layer with its history entry.
    Image with_layer(LayerPtr layer, History history) const;
    // Appends a history entry for a step that produced no layer (empty_layer is set).
    Image with_empty_layer_history(History history) const;
    // Replaces the run configuration (ENV, CMD, …) leaving layers and history alone.
    Image with_run_config(RunConfig config) const;
    // Replaces the whole config except the rootfs, which always follows the layers.
    Image with_config(ImageConfig config) const;

private:
    Image(ImageConfig config, std::vector<LayerPtr> layers) : m_config(std::move(config)), m_layers(std::move(layers)) {}
    ImageConfig m_config;
    std::vector<LayerPtr> m_layers;
};

// The serialized config and manifest of an image, stored in a BlobStore.
struct ImageDocuments {
    Descriptor config;
    std::string config_bytes;
    Descriptor manifest;
    std::string manifest_bytes;
    Manifest parsed_manifest;
};

// Serializes the config and manifest (layer media types follow `format`) and stores both in `store`.
Result<ImageDocuments> write_image_documents(const Image& image, ManifestFormat format, const BlobStore& store);

// Verifies that `documents` describe `image`: each descriptor's digest and size match its serialized bytes, and the
// manifest lists the image's layers in order. Writers call it before publishing anything.
Status check_image_documents(const Image& image, const ImageDocuments& documents);

}  // namespace kiln
