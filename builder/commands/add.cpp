#include "builder/commands/commands.hpp"

#include <fcntl.h>

#include "common/strings.hpp"

namespace kiln {
namespace {

bool is_remote(const std::string& source) {
    return source.starts_with("http://") || source.starts_with("https://") || source.starts_with("git@") ||
           source.find("://") != std::string::npos;
}

// True when the file starts like an archive ADD would extract: tar, gzip, bzip2, xz or zstd.
bool looks_like_archive(const RootFs& root, const std::string& path) {
    auto fd = root.open(path, O_RDONLY);
    if (!fd) return false;
    unsigned char header[512] = {};
    ssize_t n = ::pread(fd->get(), header, sizeof header, 0);
    if (n >= 2 && header[0] == 0x1f && header[1] == 0x8b) return true;
    if (n >= 3 && header[0] == 'B' && header[1] == 'Z' && header[2] == 'h') return true;
    if (n >= 6 && header[0] == 0xfd && header[1] == '7' && header[2] == 'z' && header[3] == 'X') return true;
    if (n >= 4 && header[0] == 0x28 && header[1] == 0xb5 && header[2] == 0x2f && header[3] == 0xfd) return true;
    return n >= 262 && std::string_view(reinterpret_cast<char*>(header) + 257, 5) == "ustar";
}

}  // namespace

// ADD of local files and directories copies like COPY. Remote sources and local archives, which ADD would
// download or extract, are refused until they are implemented rather than silently copied.
Status execute_add(StageState& state, const dockerfile::AddInstruction& instruction) {
    if (!instruction.checksum.empty() || instruction.keep_git_dir || !instruction.excludes.empty())
        return std::unexpected(instruction_error(state, instruction, "ADD --checksum, --keep-git-dir and --exclude are not supported yet"));
    for (const std::string& raw : instruction.sources) {
        KILN_ASSIGN(std::string source, state.expand(raw, instruction));
        if (is_remote(source))
            return std::unexpected(instruction_error(state, instruction, "ADD of a URL is not supported yet: " + source));
        if (source.find_first_of("*?[") == std::string::npos && looks_like_archive(state.session.context.root(), source))
            return std::unexpected(instruction_error(
                state, instruction, "ADD of a local archive (which ADD extracts) is not supported yet: " + source));
    }
    return copy_into_stage(state, instruction,
                           CopyRequest{.sources = instruction.sources,
                                       .inline_sources = instruction.inline_sources,
                                       .destination = instruction.destination,
                                       .chown = instruction.chown,
                                       .chmod = instruction.chmod});
}

}  // namespace kiln
