#pragma once
// A layer as the rest of kiln sees it, wherever its bytes live: a pulled blob, a cached one or a fresh
// snapshot are the same Layer to the builder.

#include <functional>
#include <memory>
#include <string>

#include "common/stream.hpp"
#include "images/descriptor.hpp"
#include "images/media_type.hpp"

namespace kiln {

class Layer {
public:
    virtual ~Layer() = default;
    // Digest, size and media type of the blob as stored and pushed (usually compressed).
    virtual const Descriptor& descriptor() const = 0;
    // Digest of the uncompressed tar, as listed in the config's rootfs.diff_ids.
    virtual const Digest& diff_id() const = 0;
    // The blob's bytes, as described by descriptor().
    virtual Result<std::unique_ptr<Reader>> open_blob() const = 0;
    // The file that holds the blob, where one does already; empty otherwise.
    virtual std::string file_path() const { return {}; }

    Compression compression() const { return layer_compression(descriptor().media_type); }
};

// A layer whose blob is a file on disk (in a BlobStore).
class FileLayer final : public Layer {
public:
    FileLayer(Descriptor descriptor, Digest diff_id, std::string path)
        : m_descriptor(std::move(descriptor)), m_diff_id(std::move(diff_id)), m_path(std::move(path)) {}
    const Descriptor& descriptor() const override { return m_descriptor; }
    const Digest& diff_id() const override { return m_diff_id; }
    Result<std::unique_ptr<Reader>> open_blob() const override;
    const std::string& path() const { return m_path; }
    std::string file_path() const override { return m_path; }

private:
    Descriptor m_descriptor;
    Digest m_diff_id;
    std::string m_path;
};

// A layer whose blob becomes a file on disk the first time it is read: `fetch` puts it there (and is called on
// every read, so it must remember that it has). A push that mounts the blob from another repository, or a build
// that never extracts the layer, never downloads it.
class FetchedLayer final : public Layer {
public:
    FetchedLayer(Descriptor descriptor, Digest diff_id, std::string path, std::function<Status()> fetch)
        : m_file(std::move(descriptor), std::move(diff_id), std::move(path)), m_fetch(std::move(fetch)) {}
    const Descriptor& descriptor() const override { return m_file.descriptor(); }
    const Digest& diff_id() const override { return m_file.diff_id(); }
    Result<std::unique_ptr<Reader>> open_blob() const override {
        KILN_TRY(m_fetch());
        return m_file.open_blob();
    }
    // Once fetched (or read) only: the file is not there before.
    std::string file_path() const override { return m_file.path(); }

private:
    FileLayer m_file;
    std::function<Status()> m_fetch;
};

using LayerPtr = std::shared_ptr<const Layer>;

// Streams the layer's blob into `to`, failing when its size or sha256 differs from descriptor(), so that a copy
// is never published under a name its bytes do not match. Other digest algorithms are refused.
Status copy_verified_blob(const Layer& layer, Writer& to);

}  // namespace kiln
