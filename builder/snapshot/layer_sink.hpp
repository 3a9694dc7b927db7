#pragma once
// The LayerSink of a build: new layers written as tar, compressed as the flags say and kept in the build's
// BlobStore, each logged with its digest and size.

#include "builder/snapshot/snapshotter.hpp"
#include "images/blob_store.hpp"
#include "images/media_type.hpp"

namespace kiln {

class StoreLayerSink final : public LayerSink {
public:
    StoreLayerSink(const BlobStore& store, LayerWriteOptions options, ManifestFormat format)
        : m_store(store), m_options(std::move(options)), m_format(format) {}
    Result<LayerPtr> write(const RootFs& source, const std::vector<LayerEntry>& entries) override;
    Result<LayerPtr> write_empty() override;

private:
    const BlobStore& m_store;
    LayerWriteOptions m_options;
    ManifestFormat m_format;
};

}  // namespace kiln
