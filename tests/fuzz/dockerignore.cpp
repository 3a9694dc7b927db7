// Fuzzes .dockerignore parsing and matching.
// Input: the .dockerignore text ['\0' context paths, one a line]. Every pattern line is also tried as a path,
// as are a few fixed ones, so that plain .dockerignore files are useful seeds as they are.

#include <string>
#include <string_view>
#include <vector>

#include "dockerfile-parser/dockerignore.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln::dockerfile;
    kiln::fuzz::quiet_logs();
    auto [text, path_text] = kiln::fuzz::split_once(kiln::fuzz::as_text(data, size), '\0');

    std::vector<std::string_view> paths{"a", "a/b", "a/b/c.txt", "Dockerfile", ".git/config", "ignore/foo"};
    std::vector<std::string> pattern_lines;
    for (std::string_view line : kiln::fuzz::lines_of(text)) {
        paths.push_back(line);
        pattern_lines.emplace_back(line);
    }
    for (std::string_view line : kiln::fuzz::lines_of(path_text)) paths.push_back(line);

    for (std::string_view path : paths) {
        std::string cleaned = clean_path(path);
        kiln::fuzz::require(clean_path(cleaned) == cleaned, "clean_path is idempotent");
    }

    auto parsed = IgnoreMatcher::parse(text);
    auto from_lines = IgnoreMatcher::from_patterns(pattern_lines);
    for (auto* matcher : {&parsed, &from_lines}) {
        if (!*matcher) {
            (void)matcher->error().message();
            continue;
        }
        (void)(*matcher)->has_exceptions();
        for (std::string_view path : paths) {
            (void)(*matcher)->matches(path);
            (void)(*matcher)->must_descend(path);
        }
    }
    return 0;
}
