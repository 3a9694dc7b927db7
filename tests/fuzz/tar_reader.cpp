// Fuzzes the tar reader (libarchive behind kiln's TarEntry): every entry's header and content, then the drain
// that a hashing Reader relies on. Input: an uncompressed tar stream.

#include <cstdint>
#include <string>

#include "common/stream.hpp"
#include "layers/tar_entry.hpp"
#include "layers/tar_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    StringReader source{std::string(fuzz::as_text(data, size))};
    TarReader tar(source);
    TarEntry entry;
    while (true) {
        auto more = tar.next(entry);
        if (!more) {
            (void)more.error().message();
            return 0;
        }
        if (!*more) break;
        (void)tar_entry_type_name(entry.type);
        (void)file_type_bits(entry.type);
        for (const auto& [name, value] : entry.xattrs) (void)is_host_private_xattr(name);
        std::uint64_t content = 0;
        while (true) {
            auto block = tar.read_block();
            if (!block) {
                (void)block.error().message();
                return 0;
            }
            if (!*block) break;
            fuzz::require((*block)->offset >= 0, "a block's offset is not negative");
            content += (*block)->size;
            fuzz::require(content <= size, "an entry's stored content comes from the input");
        }
    }
    if (auto drained = tar.drain(); !drained) (void)drained.error().message();
    fuzz::require(tar.bytes_read() <= size, "the reader takes no more bytes than the input has");
    return 0;
}
