#pragma once
// The filesystems of images that COPY --from=<image> and RUN --mount=from=<image> read: each image extracted
// once into the build's work directory, whichever stages name it and however many at once.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "builder/sources/image_source.hpp"
#include "layers/extract.hpp"

namespace kiln {

class ImageFilesystems {
public:
    // Images are resolved and fetched through `images` and extracted below `directory`.
    ImageFilesystems(ImageSource& images, std::string directory, OwnershipFailure ownership)
        : m_images(images), m_directory(std::move(directory)), m_ownership(ownership) {}

    // The directory holding the filesystem of image `name` for `platform` ("scratch": an empty one),
    // extracting it on first use. Only callers of the same image wait for each other.
    Result<std::string> directory_of(const std::string& name, const Platform& platform);

private:
    struct Entry {
        std::mutex mutex;
        size_t number = 0;  // its directory's name, fixed when the entry is made
        std::optional<Result<std::string>> directory;
    };
    Result<std::string> extract(const std::string& name, const Platform& platform, size_t number);

    ImageSource& m_images;
    std::string m_directory;
    OwnershipFailure m_ownership;
    std::mutex m_mutex;  // guards m_entries only
    std::map<std::string, std::shared_ptr<Entry>> m_entries;
};

}  // namespace kiln
