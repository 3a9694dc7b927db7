#include "builder/sources/image_filesystems.hpp"

#include "common/files.hpp"
#include "common/strings.hpp"
#include "layers/apply_image.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

Result<std::string> ImageFilesystems::directory_of(const std::string& name, const Platform& platform) {
    std::shared_ptr<Entry> entry;
    {
        std::lock_guard lock(m_mutex);
        std::shared_ptr<Entry>& slot = m_entries[str_cat(platform.str(), " ", name)];
        if (!slot) {
            slot = std::make_shared<Entry>();
            slot->number = m_entries.size();
        }
        entry = slot;
    }
    std::lock_guard lock(entry->mutex);
    if (!entry->directory) entry->directory = extract(name, platform, entry->number);
    return *entry->directory;
}

Result<std::string> ImageFilesystems::extract(const std::string& name, const Platform& platform, size_t number) {
    std::string dir = str_cat(m_directory, "/", number);
    KILN_TRY(make_directories(dir, 0755));
    if (name == "scratch") return dir;  // as in BuildKit: the empty filesystem, no image to pull
    KILN_ASSIGN(SourceImage image, m_images.resolve(name, platform));
    KILN_TRY(m_images.fetch_layers(image));
    KILN_ASSIGN(RootFs root, RootFs::open(dir));
    KILN_TRY_CONTEXT(extract_image(image.image, root, m_ownership), str_cat("extracting ", name));
    return dir;
}

}  // namespace kiln
