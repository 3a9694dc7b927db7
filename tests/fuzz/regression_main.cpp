// The regression driver: links with one harness and feeds it every file under the directories (or the files)
// named on the command line, so that the normal suite replays the seeds and every crash fuzzing ever found,
// without clang or libFuzzer. A crash, a sanitizer report or an escaping exception fails the test; a
// directory that does not exist (no regression recorded yet) is skipped.
//   kiln_fuzz_regression_<harness> <seeds dir> <regressions dir>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_support.hpp"

namespace {

// The regular files at or below `path`, sorted so that a failure is reproducible.
std::vector<std::filesystem::path> inputs_at(const std::filesystem::path& path) {
    std::vector<std::filesystem::path> inputs;
    if (std::filesystem::is_regular_file(path)) {
        inputs.push_back(path);
    } else if (std::filesystem::is_directory(path)) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(path))
            if (entry.is_regular_file()) inputs.push_back(entry.path());
    }
    std::sort(inputs.begin(), inputs.end());
    return inputs;
}

}  // namespace

int main(int argc, char** argv) {
    size_t ran = 0;
    for (int i = 1; i < argc; ++i) {
        for (const std::filesystem::path& input : inputs_at(argv[i])) {
            std::ifstream in(input, std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (!in.good() && !in.eof()) {
                std::fprintf(stderr, "cannot read %s\n", input.c_str());
                return 1;
            }
            // Named first, so that a crash's report says which input it was.
            std::fprintf(stderr, "running %s\n", input.c_str());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
            ++ran;
        }
    }
    if (ran == 0) {
        std::fprintf(stderr, "no inputs found: the seeds directory is missing\n");
        return 1;
    }
    std::printf("%zu inputs ran without a finding\n", ran);
    return 0;
}
