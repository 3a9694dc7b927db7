#include "images/layer.hpp"

#include <fcntl.h>

#include "common/fd.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

// A reader that owns its descriptor.
class OwnedFdReader final : public Reader {
public:
    OwnedFdReader(UniqueFd fd, std::string name) : m_fd(std::move(fd)), m_reader(m_fd.get(), std::move(name)) {}
    Result<size_t> read(char* buffer, size_t size) override { return m_reader.read(buffer, size); }

private:
    UniqueFd m_fd;
    FdReader m_reader;
};

}  // namespace

Result<std::unique_ptr<Reader>> FileLayer::open_blob() const {
    UniqueFd fd(::open(m_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno(str_cat("open layer ", m_descriptor.digest.str()));
    return std::unique_ptr<Reader>(std::make_unique<OwnedFdReader>(std::move(fd), m_descriptor.digest.str()));
}

Status copy_verified_blob(const Layer& layer, Writer& to) {
    const Descriptor& descriptor = layer.descriptor();
    if (descriptor.digest.algorithm() != "sha256")
        return fail(str_cat("cannot verify layer ", descriptor.digest.str(), ": only sha256 digests are supported"));
    KILN_ASSIGN(std::unique_ptr<Reader> blob, layer.open_blob());
    HashingWriter hashing(&to);
    KILN_TRY_CONTEXT(copy_stream(*blob, hashing), str_cat("copying layer ", descriptor.digest.str()));
    if (hashing.size() != static_cast<std::uint64_t>(descriptor.size))
        return fail(str_cat("layer ", descriptor.digest.str(), " has ", hashing.size(), " bytes, its descriptor says ",
                            descriptor.size));
    std::string actual = hashing.finish_digest();
    if (actual != descriptor.digest.str())
        return fail(str_cat("layer ", descriptor.digest.str(), " failed verification: its content has digest ", actual));
    return {};
}

}  // namespace kiln
