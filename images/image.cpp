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
        // The same bytes are described in the manifest flavour being written. Foreign/nondistributable layers keep
        // their type: turning them into ordinary layers would have registries expect their bytes.
        if (is_layer_media_type(descriptor.media_type) && !is_nondistributable_layer_media_type(descriptor.media_type))
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

namespace {

Status check_document(const Descriptor& descriptor, std::string_view bytes, std::string_view what) {
    Digest actual = Digest::of_bytes(bytes);
    if (descriptor.digest != actual || descriptor.size != static_cast<std::int64_t>(bytes.size()))
        return fail(str_cat("image ", what, " ", descriptor.digest.str(), " (", descriptor.size,
                            " bytes) does not match its serialized form ", actual.str(), " (", bytes.size(),
                            " bytes)"));
    return {};
}

}  // namespace

Status check_image_documents(const Image& image, const ImageDocuments& documents) {
    KILN_TRY(check_document(documents.config, documents.config_bytes, "config"));
    KILN_TRY(check_document(documents.manifest, documents.manifest_bytes, "manifest"));
    const std::vector<Descriptor>& listed = documents.parsed_manifest.layers;
    if (listed.size() != image.layers().size())
        return fail(str_cat("the manifest lists ", listed.size(), " layers but the image has ", image.layers().size()));
    for (size_t i = 0; i < listed.size(); ++i) {
        const Descriptor& layer = image.layers()[i]->descriptor();
        if (listed[i].digest != layer.digest || listed[i].size != layer.size)
            return fail(str_cat("the manifest lists layer ", i + 1, " as ", listed[i].digest.str(),
                                " but the image has ", layer.digest.str()));
    }
    if (documents.parsed_manifest.config.digest != documents.config.digest)
        return fail(str_cat("the manifest names config ", documents.parsed_manifest.config.digest.str(),
                            " but the config is ", documents.config.digest.str()));
    return {};
}

}  // namespace kiln
