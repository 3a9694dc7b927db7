#pragma once
// A gzip image layer made from an uncompressed tar and kept in a BlobStore, as a build would have written it.
// Header-only: kiln_test_support does not link the images and layers libraries this needs; the test binaries
// that include it do.

#include <string>

#include "common/error.hpp"
#include "common/stream.hpp"
#include "images/blob_store.hpp"
#include "images/layer.hpp"
#include "layers/compression.hpp"

namespace kiln::test {

inline Result<LayerPtr> gzip_layer(BlobStore& store, const std::string& tar) {
    StringWriter compressed;
    KILN_ASSIGN(auto compressor, make_compressor(compressed, CompressionOptions{.compression = Compression::gzip}));
    KILN_TRY(compressor->write(tar));
    KILN_TRY(compressor->finish());
    KILN_ASSIGN(Digest digest, store.put(compressed.bytes()));
    Descriptor descriptor{.media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
                          .digest = digest,
                          .size = static_cast<std::int64_t>(compressed.bytes().size())};
    return LayerPtr(std::make_shared<FileLayer>(descriptor, Digest::of_bytes(tar), store.path(digest)));
}

}  // namespace kiln::test
