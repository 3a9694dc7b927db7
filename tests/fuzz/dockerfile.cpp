// Fuzzes the Dockerfile parser through every stage the builder uses: text → located AST (and its dump) → one
// typed instruction per node → stages, then expands each instruction's words the way dispatch does.

#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/strings.hpp"
#include "dockerfile-parser/ast.hpp"
#include "dockerfile-parser/instructions.hpp"
#include "dockerfile-parser/shell_expand.hpp"
#include "dockerfile-parser/stages.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace kiln::dockerfile {
namespace {

// Adds the words of one typed instruction that the builder expands with the stage's ARG/ENV scope.
template <class T>
void add_expanded_words(const T& typed, std::vector<std::string_view>& words) {
    if constexpr (std::is_same_v<T, FromInstruction>) {
        words.insert(words.end(), {typed.image, typed.platform});
    } else if constexpr (std::is_same_v<T, ArgInstruction>) {
        for (const auto& arg : typed.args)
            if (arg.default_value) words.push_back(*arg.default_value);
    } else if constexpr (std::is_same_v<T, EnvInstruction> || std::is_same_v<T, LabelInstruction>) {
        for (const KeyValue& pair : typed.pairs) words.insert(words.end(), {pair.key, pair.value});
    } else if constexpr (std::is_same_v<T, CopyInstruction> || std::is_same_v<T, AddInstruction>) {
        words.insert(words.end(), typed.sources.begin(), typed.sources.end());
        words.insert(words.end(), {typed.destination, typed.chown, typed.chmod});
        for (const HeredocFile& heredoc : typed.inline_sources)
            if (heredoc.expand) words.push_back(heredoc.content);
    } else if constexpr (std::is_same_v<T, RunInstruction>) {
        words.insert(words.end(), typed.mounts.begin(), typed.mounts.end());
        for (const HeredocFile& heredoc : typed.heredocs)
            if (heredoc.expand) words.push_back(heredoc.content);
    } else if constexpr (std::is_same_v<T, WorkdirInstruction>) {
        words.push_back(typed.path);
    } else if constexpr (std::is_same_v<T, UserInstruction>) {
        words.push_back(typed.user);
    } else if constexpr (std::is_same_v<T, ExposeInstruction>) {
        words.insert(words.end(), typed.ports.begin(), typed.ports.end());
    } else if constexpr (std::is_same_v<T, VolumeInstruction>) {
        words.insert(words.end(), typed.paths.begin(), typed.paths.end());
    } else if constexpr (std::is_same_v<T, StopsignalInstruction>) {
        words.push_back(typed.signal);
    } else if constexpr (std::is_same_v<T, HealthcheckInstruction>) {
        for (const std::string* duration :
             {&typed.interval, &typed.timeout, &typed.start_period, &typed.start_interval})
            (void)parse_go_duration_ns(*duration);
    }
}

std::vector<std::string_view> expanded_words(const Instruction& instruction) {
    std::vector<std::string_view> words;
    std::visit([&](const auto& typed) { add_expanded_words(typed, words); }, instruction);
    return words;
}

void expand_all(const Dockerfile& dockerfile) {
    ShellExpander expander(dockerfile.escape);
    EnvLookup env =
        env_from_list({"HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin", "EMPTY=", "SPACED=a b  c"});
    auto expand = [&](std::string_view word) {
        (void)expander.process_word(word, env);
        (void)expander.process_words(word, env);
    };
    std::vector<std::string_view> words;
    for (const ArgInstruction& arg : dockerfile.meta_args) add_expanded_words(arg, words);
    for (const Stage& stage : dockerfile.stages) {
        (void)dockerfile.find_stage(stage.name);
        add_expanded_words(stage.from, words);
        for (const Instruction& instruction : stage.instructions) {
            (void)instruction_name(instruction);
            for (std::string_view word : expanded_words(instruction)) expand(word);
        }
    }
    for (std::string_view word : words) expand(word);
}

}  // namespace
}  // namespace kiln::dockerfile

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
    using namespace kiln::dockerfile;
    kiln::fuzz::quiet_logs();
    auto ast = parse_ast(kiln::fuzz::as_text(data, size));
    if (!ast) {
        (void)ast.error().message();
        return 0;
    }
    (void)dump(*ast);
    for (const Node& node : ast->children) {
        for (const Heredoc& heredoc : node.heredocs) (void)chomp_heredoc_content(heredoc.content);
        for (const std::string& arg : node.args) (void)parse_heredoc(arg);
        auto instruction = parse_instruction(node, ast->file_name);
        if (!instruction) {
            (void)instruction.error().message();
            continue;
        }
        kiln::fuzz::require(instruction_base(*instruction).location.start_line == node.start_line,
                            "an instruction starts on its node's line");
        // The builder parses an ONBUILD trigger again when an image built FROM this one runs it.
        if (const auto* onbuild = std::get_if<OnbuildInstruction>(&*instruction)) {
            if (auto trigger = parse_ast(onbuild->trigger, ast->file_name))
                for (const Node& trigger_node : trigger->children)
                    (void)parse_instruction(trigger_node, ast->file_name);
        }
    }
    auto dockerfile = build_stages(*ast);
    if (!dockerfile) {
        (void)dockerfile.error().message();
        return 0;
    }
    expand_all(*dockerfile);
    return 0;
}
