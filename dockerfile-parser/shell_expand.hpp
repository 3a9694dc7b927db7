#pragma once
// Shell-word processing as buildkit does it when an instruction is dispatched: quote removal, escapes and
// parameter expansion ($VAR, ${VAR}, ${VAR:-x}, ${VAR+x}, ${VAR:?msg}, ${VAR#pat}, ${VAR%%pat}, ${VAR/p/r}, …).
// Nothing runs: there is no command substitution, and positional/special parameters ($1, $@, $$) are empty.

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace kiln::dockerfile {

// Finds a variable: its value, or nullopt when it is not set (set-but-empty is "").
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// A lookup over "NAME=VALUE" strings (a string without '=' sets NAME to ""); the last definition of a name wins.
EnvLookup env_from_list(std::vector<std::string> entries);

// Lexer switches for the special callers (the heredoc scanner); the builder uses the defaults.
struct ShellLexOptions {
    bool keep_quotes = false;        // quotes stay in the result (buildkit RawQuotes)
    bool keep_escapes = false;       // escape characters stay in the result (buildkit RawEscapes)
    bool keep_unset = false;         // an unset variable stays as written, e.g. "$FOO" (buildkit SkipUnsetEnv)
    bool quotes_are_literal = false;  // ' and " are ordinary characters (buildkit SkipProcessQuotes)
};

// Everything expand() learns about a word.
struct ShellExpansion {
    std::string result;               // the whole word after quote removal and expansion
    std::vector<std::string> words;   // the same, split on unquoted white space of expansion results
    std::set<std::string> matched;    // referenced variables that were set
    std::set<std::string> unmatched;  // referenced variables that were not set
};

// Expands one shell word at a time; stateless, so one expander serves a whole build.
class ShellExpander {
public:
    // `escape` is the Dockerfile's escape character: '\\' or '`'.
    explicit ShellExpander(char escape = '\\', ShellLexOptions options = {});

    // One string: ARG/ENV values, WORKDIR, USER, COPY paths…
    Result<std::string> process_word(std::string_view word, const EnvLookup& env) const;
    // Several words, splitting unquoted expansion results on white space (buildkit ProcessWords).
    Result<std::vector<std::string>> process_words(std::string_view word, const EnvLookup& env) const;
    // Everything at once, with the names of the variables referenced (buildkit ProcessWordWithMatches).
    Result<ShellExpansion> expand(std::string_view word, const EnvLookup& env) const;

    char escape() const { return m_escape; }

private:
    char m_escape;
    ShellLexOptions m_options;
};

}  // namespace kiln::dockerfile
