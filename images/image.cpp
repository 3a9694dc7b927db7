#include "images/image.hpp"

#include "common/strings.hpp"

namespace kiln {

Image Image::empty(const Platform& platform) {
    ImageConfig config;
    config.os = platform.os;
    config.architecture = platform.architecture;
    config.variant = platform.variant;
    return Image(std::move(config), {});
}

Result<Image> Image::create(ImageConfig config, std::vector<LayerPtr> layers) {
    if (config.diff_ids.size() != layers.size())
        return fail(str_cat("image config lists ", config.diff_ids.size(), " diff_ids but the manifest has ",
                            layers.size(), " layers"));
    for (size_t i = 0; i < layers.size(); ++i) {
        if (config.diff_ids[i] != layers[i]->diff_id())
            return fail(str_cat("layer ", i + 1, " (", layers[i]->descriptor().digest.str(), ") has diffID ",
                                layers[i]->diff_id().str(), " but the config lists ", config.diff_ids[i].str()));
    }
    return Image(std::move(config), std::move(layers));
}

Image Image::with_layer(LayerPtr layer, History history) const {
    Image next = *this;
    next.m_config.diff_ids.push_back(layer->diff_id());
    history.empty_layer = false;
    next.m_config.history.push_back(std::move(history));
    next.m_layers.push_back(std::move(layer));
    return next;
}

Image Image::with_empty_layer_history(History history) const {
    Image next = *this;
    history.empty_layer = true;
    next.m_config.history.push_back(std::move(history));
    return next;
}

Image Image::with_run_config(RunConfig config) const {
    Image next = *this;
    next.m_config.config = std::move(config);
    return next;
}

Image Image::with_config(ImageConfig config) const {
    Image next = *this;
    config.diff_ids = m_config.diff_ids;
    next.m_config = std::move(config);
    return next;
}

Result<ImageDocuments> write_image_documents(const Image& image, ManifestFormat format, const BlobStore& store) {
    ImageDocuments documents;
    documents.config_bytes = image.config().serialize();
    KILN_ASSIGN(Digest config_digest, store.put(documents.config_bytes));
    documents.config = Descriptor{.media_type = std::string(config_media_type(format)),
                                  .digest = config_digest,
                                  .size = static_cast<std::int64_t>(documents.config_bytes.size())};

    Manifest manifest;
    manifest.media_type = manifest_media_type(format);
    manifest.config = documents.config;
    for (const LayerPtr& layer : image.layers()) {
        Descriptor descriptor = layer->descriptor();
        // The same bytes are described in the manifest flavour being written.
        if (is_layer_media_type(descriptor.media_type))
            descriptor.media_type = layer_media_type(format, layer->compression());
        manifest.layers.push_back(std::move(descriptor));
    }
    documents.manifest_bytes = manifest.serialize();
    KILN_ASSIGN(Digest manifest_digest, store.put(documents.manifest_bytes));
    documents.manifest = Descriptor{.media_type = manifest.media_type,
                                    .digest = manifest_digest,
                                    .size = static_cast<std::int64_t>(documents.manifest_bytes.size())};
    documents.parsed_manifest = std::move(manifest);
    return documents;
}

}  // namespace kiln
