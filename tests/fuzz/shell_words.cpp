// Fuzzes shell-word expansion (quote removal, escapes, ${VAR…} forms, word splitting).
// Input: [options byte] word ['\0' NAME=VALUE lines]. A first byte below 0x20 selects the lexer switches and
// the escape character (its bits below); any other first byte is part of the word and the defaults apply, so
// plain text such as buildkit's envVarTest lines is a useful seed as it is.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dockerfile-parser/shell_expand.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

constexpr unsigned char k_backtick_escape = 0x01;
constexpr unsigned char k_keep_quotes = 0x02;
constexpr unsigned char k_keep_escapes = 0x04;
constexpr unsigned char k_keep_unset = 0x08;
constexpr unsigned char k_quotes_are_literal = 0x10;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln::dockerfile;
    kiln::fuzz::quiet_logs();
    std::string_view input = kiln::fuzz::as_text(data, size);

    unsigned char switches = 0;
    if (!input.empty() && static_cast<unsigned char>(input.front()) < 0x20) {
        switches = static_cast<unsigned char>(input.front());
        input.remove_prefix(1);
    }
    ShellLexOptions options{.keep_quotes = (switches & k_keep_quotes) != 0,
                            .keep_escapes = (switches & k_keep_escapes) != 0,
                            .keep_unset = (switches & k_keep_unset) != 0,
                            .quotes_are_literal = (switches & k_quotes_are_literal) != 0};
    ShellExpander expander((switches & k_backtick_escape) ? '`' : '\\', options);

    auto [word, env_text] = kiln::fuzz::split_once(input, '\0');
    std::vector<std::string> entries{"HOME=/root", "EMPTY=", "SPACED= a  b ", "PATTERN=*.txt"};
    for (std::string_view line : kiln::fuzz::lines_of(env_text)) entries.emplace_back(line);
    EnvLookup env = env_from_list(std::move(entries));

    auto one = expander.process_word(word, env);
    auto words = expander.process_words(word, env);
    auto expansion = expander.expand(word, env);
    if (expansion) {
        // expand() is process_word and process_words at once: it must agree with both.
        kiln::fuzz::require(one && one.value() == expansion->result, "expand().result equals process_word()");
        kiln::fuzz::require(words && words.value() == expansion->words,
                            "expand().words equals process_words()");
        for (const std::string& name : expansion->matched)
            kiln::fuzz::require(!expansion->unmatched.contains(name), "no variable is both set and unset");
    } else {
        (void)expansion.error().message();
    }
    return 0;
}
