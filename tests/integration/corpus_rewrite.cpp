#include "tests/integration/corpus_rewrite.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/strings.hpp"

namespace kiln::test {
namespace {

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Words separated by blanks; quotes group (and are kept), as ARG and FROM words are in the corpus.
std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    char quote = 0;
    for (char c : text) {
        if (quote) {
            word += c;
            if (c == quote) quote = 0;
        } else if (c == ' ' || c == '\t') {
            if (!word.empty()) words.push_back(std::move(word));
            word.clear();
        } else {
            if (c == '"' || c == '\'') quote = c;
            word += c;
        }
    }
    if (!word.empty()) words.push_back(std::move(word));
    return words;
}

// The names of the variables `word` refers to ($NAME, ${NAME}).
std::vector<std::string> variables_in(std::string_view word) {
    std::vector<std::string> names;
    for (size_t i = 0; i < word.size(); ++i) {
        if (word[i] != '$' || i + 1 == word.size()) continue;
        size_t start = word[i + 1] == '{' ? i + 2 : i + 1;
        size_t end = start;
        while (end < word.size() && is_name_char(word[end])) ++end;
        if (end > start) names.emplace_back(word.substr(start, end - start));
    }
    return names;
}

// $NAME and ${NAME} with `scope` (unset is empty); any other ${…} form is refused.
Result<std::string> expand(std::string_view word, const std::map<std::string, std::string>& scope) {
    std::string out;
    for (size_t i = 0; i < word.size(); ++i) {
        if (word[i] != '$' || i + 1 == word.size()) {
            out += word[i];
            continue;
        }
        bool braced = word[i + 1] == '{';
        size_t start = braced ? i + 2 : i + 1;
        size_t end = start;
        while (end < word.size() && is_name_char(word[end])) ++end;
        if (braced && (end == word.size() || word[end] != '}'))
            return fail(str_cat("the rewriter cannot expand ", word, " (only $NAME and ${NAME})"));
        auto found = scope.find(std::string(word.substr(start, end - start)));
        if (found != scope.end()) out += found->second;
        i = braced ? end : end - 1;
    }
    return out;
}

// The value without its surrounding quotes, and the quote character (0 for none).
std::pair<std::string, char> unquote(std::string_view value) {
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
        return {std::string(value.substr(1, value.size() - 2)), value.front()};
    return {std::string(value), 0};
}

bool continues(std::string_view line) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
        line.remove_suffix(1);
    return !line.empty() && line.back() == '\\';
}

struct InstructionLine {
    size_t index;         // in the lines of the file
    std::string keyword;  // upper case
    size_t keyword_end;   // offset just past the keyword in the line
};

Result<std::vector<InstructionLine>> instruction_lines(const std::vector<std::string>& lines) {
    std::vector<InstructionLine> found;
    bool continuing = false;
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        std::string_view trimmed = trim(line);
        if (trimmed.empty() || trimmed.front() == '#')
            continue;  // comments inside a continuation are dropped too
        bool next_continues = continues(line);
        if (continuing) {
            continuing = next_continues;
            continue;
        }
        continuing = next_continues;
        size_t start = line.find_first_not_of(" \t");
        size_t end = line.find_first_of(" \t", start);
        if (end == std::string_view::npos) end = line.size();
        std::string keyword(line.substr(start, end - start));
        std::transform(keyword.begin(), keyword.end(), keyword.begin(),
                       [](unsigned char c) { return std::toupper(c); });
        if ((keyword == "FROM" || keyword == "ARG") && next_continues)
            return fail(
                str_cat("line ", i + 1, ": the rewriter does not follow a ", keyword, " onto the next line"));
        found.push_back({i, keyword, end});
    }
    return found;
}

// R1/R2 on an ARG default, quotes kept; empty, `scratch` and variable-led values are kept (R3).
std::string rewrite_default(std::string_view raw, const std::string& registry) {
    auto [value, quote] = unquote(raw);
    if (value.empty() || value.front() == '$' || to_lower(value) == "scratch") return std::string(raw);
    std::string rewritten = mirror_image(value, registry);
    return quote ? str_cat(quote, rewritten, quote) : rewritten;
}

}  // namespace

std::string mirror_image(std::string_view image, const std::string& registry) {
    std::string name(image);
    size_t slash = name.find('/');
    if (slash != std::string::npos) {
        std::string first = name.substr(0, slash);
        if (first.find_first_of(".:") != std::string::npos || first == "localhost") name.erase(0, slash + 1);
    }
    size_t at = name.find('@');
    if (name.find('$') == std::string::npos && at != std::string::npos) {
        std::string digest = name.substr(at + 1);
        name.erase(at);
        size_t last_slash = name.rfind('/');
        bool tagged = name.find(':', last_slash == std::string::npos ? 0 : last_slash) != std::string::npos;
        size_t colon = digest.find(':');
        if (!tagged) name += str_cat(":", digest.substr(0, colon), "-", digest.substr(colon + 1, 12));
    }
    return registry + "/mirror/" + name;
}

Result<RewrittenDockerfile> rewrite_for_local_registry(std::string_view dockerfile,
                                                       const std::string& registry,
                                                       const std::vector<std::string>& build_args) {
    std::vector<std::string> lines = split(dockerfile, '\n');
    KILN_ASSIGN(std::vector<InstructionLine> instructions, instruction_lines(lines));
    auto first_from = std::find_if(instructions.begin(), instructions.end(),
                                   [](const InstructionLine& line) { return line.keyword == "FROM"; });
    auto rest_of = [&](const InstructionLine& line) {
        return split_words(std::string_view(lines[line.index]).substr(line.keyword_end));
    };

    // Which global ARGs feed a FROM that starts with a variable, following variable-led defaults (R3).
    std::set<std::string> feeding;
    for (const InstructionLine& line : instructions)
        if (line.keyword == "FROM")
            for (const std::string& word : rest_of(line))
                if (!word.starts_with("--")) {
                    if (word.starts_with("$"))
                        for (std::string& name : variables_in(word)) feeding.insert(std::move(name));
                    break;
                }
    for (size_t before = 0; before != feeding.size();) {
        before = feeding.size();
        for (auto it = instructions.begin(); it != first_from; ++it)
            for (const std::string& word : rest_of(*it)) {
                size_t equals = word.find('=');
                if (equals == std::string::npos || !feeding.contains(word.substr(0, equals))) continue;
                std::string value = unquote(std::string_view(word).substr(equals + 1)).first;
                if (value.starts_with("$"))
                    for (std::string& name : variables_in(value)) feeding.insert(std::move(name));
            }
    }

    std::map<std::string, std::string> overrides;
    for (const std::string& arg : build_args)
        if (size_t equals = arg.find('='); equals != std::string::npos)
            overrides[arg.substr(0, equals)] = arg.substr(equals + 1);
    std::map<std::string, std::string> scope;  // the global ARGs as the FROMs see them
    std::set<std::string> stages;
    RewrittenDockerfile result;
    for (auto it = instructions.begin(); it != instructions.end(); ++it) {
        std::string& text = lines[it->index];
        std::vector<std::string> words = rest_of(*it);
        const std::vector<std::string> original_words = words;
        if (it->keyword == "ARG" && it < first_from) {
            for (std::string& word : words) {
                size_t equals = word.find('=');
                std::string name = word.substr(0, equals);
                if (equals != std::string::npos && feeding.contains(name))
                    word = name + "=" + rewrite_default(std::string_view(word).substr(equals + 1), registry);
                if (overrides.contains(name)) {
                    scope[name] = overrides[name];
                } else if (equals != std::string::npos) {
                    KILN_ASSIGN(scope[name],
                                expand(unquote(std::string_view(word).substr(equals + 1)).first, scope));
                }
            }
        } else if (it->keyword == "FROM") {
            auto image = std::find_if(words.begin(), words.end(),
                                      [](const std::string& w) { return !w.starts_with("--"); });
            if (image == words.end()) return fail(str_cat("line ", it->index + 1, ": FROM without an image"));
            bool literal = image->find('$') == std::string::npos;
            bool kept = image->starts_with("$") ||
                        (literal && (to_lower(*image) == "scratch" || stages.contains(to_lower(*image))));
            if (!kept) *image = mirror_image(*image, registry);
            KILN_ASSIGN(std::string resolved, expand(*image, scope));
            if (resolved.starts_with(registry + "/mirror/")) {
                if (resolved.find(':', resolved.rfind('/')) == std::string::npos) resolved += ":latest";
                if (std::find(result.mirror_references.begin(), result.mirror_references.end(), resolved) ==
                    result.mirror_references.end())
                    result.mirror_references.push_back(resolved);
            }
            if (image + 1 != words.end() && to_lower(image[1]) == "as" && image + 2 != words.end())
                stages.insert(to_lower(image[2]));
        }
        if (words != original_words) text = text.substr(0, it->keyword_end) + " " + join(words, " ");
    }
    result.text = join(lines, "\n");
    return result;
}

}  // namespace kiln::test
