// Fuzzes layer extraction: each input is applied to a fresh rootfs in its own temporary directory, which is
// removed afterwards. Beside the rootfs sits an "outside" directory with a canary file; anything the layer
// creates, changes or links outside the rootfs is a finding, as is any crash.
// Input: an uncompressed tar stream; its last byte also picks the options (bits below). A tar ends in zero
// blocks, so a plain tar is extracted as a layer with the defaults.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/stream.hpp"
#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "layers/rootfs.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

constexpr unsigned char k_archive_mode = 0x01;
constexpr unsigned char k_overlay_whiteouts = 0x02;
constexpr unsigned char k_chown_all = 0x04;
constexpr unsigned char k_warn_on_ownership = 0x08;

// Bounds the disk a single input can use: extraction writes at most what the tar stores (long runs of zeros
// and sparse holes become holes), so bounding the input bounds the files.
constexpr size_t k_max_input = 1 << 20;

constexpr const char* k_canary = "must survive";

// Fails the run, naming what the harness itself could not do (not a finding in the code under test).
[[noreturn]] void setup_failed(const std::string& what) {
    std::fprintf(stderr, "fuzz extract: %s\n", what.c_str());
    std::abort();
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> names_in(const std::string& directory) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(directory))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln;
    fuzz::quiet_logs();
    if (size > k_max_input) return 0;
    unsigned char switches = size > 0 ? data[size - 1] : 0;

    auto base = TempDir::create(default_temp_parent(), "kiln-fuzz-extract-");
    if (!base) setup_failed(base.error().message());
    const std::string root_path = base->path() + "/root";
    const std::string outside = base->path() + "/outside";
    if (::mkdir(root_path.c_str(), 0755) != 0 || ::mkdir(outside.c_str(), 0755) != 0)
        setup_failed("cannot create " + root_path + " and " + outside);
    {
        std::ofstream canary(outside + "/canary", std::ios::binary);
        canary << k_canary;
        if (!canary) setup_failed("cannot write the canary in " + outside);
    }
    auto root = RootFs::open(root_path);
    if (!root) setup_failed(root.error().message());

    std::vector<std::string> written;
    ExtractOptions options{.layer_name = "sha256:fuzz",
                           .ownership_failure = (switches & k_warn_on_ownership) ? OwnershipFailure::warn_once
                                                                                 : OwnershipFailure::error,
                           .mode = (switches & k_archive_mode) ? ExtractMode::archive : ExtractMode::layer,
                           .written = &written,
                           .whiteout_format = (switches & k_overlay_whiteouts) ? WhiteoutFormat::overlay
                                                                               : WhiteoutFormat::apply};
    if (switches & k_chown_all) options.owner = ExtractOwner{.uid = 1000, .gid = 1000};

    StringReader tar{std::string(fuzz::as_text(data, size))};
    auto stats = apply_layer(*root, tar, options);
    if (!stats) (void)stats.error().message();

    fuzz::require(names_in(base->path()) == std::vector<std::string>{"outside", "root"},
                  "nothing appears beside the rootfs");
    fuzz::require(names_in(outside) == std::vector<std::string>{"canary"},
                  "nothing appears outside the rootfs");
    struct stat canary_stat {};
    fuzz::require(::lstat((outside + "/canary").c_str(), &canary_stat) == 0 && S_ISREG(canary_stat.st_mode) &&
                      canary_stat.st_nlink == 1,
                  "the file outside the rootfs is neither replaced nor linked into it");
    fuzz::require(read_text(outside + "/canary") == k_canary,
                  "the file outside the rootfs keeps its content");
    return 0;
}
