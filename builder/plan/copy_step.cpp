// COPY and ADD, planned: flags expanded and checked, sources expanded and classified (path, URL, git), the
// destination made absolute against WORKDIR, and --from resolved to a stage or an image. Which files the
// patterns select is decided when the step runs, once the source's filesystem exists.

#include "builder/plan/stage_scope.hpp"
#include "builder/sources/url_source.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln {
namespace {

// The fields COPY and ADD share, as the parser gives them.
struct CopyWords {
    const std::vector<std::string>& sources;
    const std::vector<dockerfile::HeredocFile>& inline_sources;
    const std::string& destination;
    const std::string& from;
    const std::string& chown;
    const std::string& chmod;
    const std::vector<std::string>& excludes;
    bool parents;
    const std::string& checksum;
};

Status plan_sources(const StageScope& scope, const dockerfile::InstructionBase& at, const CopyWords& words,
                    CopyStep& copy) {
    bool add = copy.command == CopyCommand::add;
    for (const std::string& raw : words.sources) {
        KILN_ASSIGN(std::string source, scope.expand(raw, at));
        AddSourceKind kind = classify_add_source(source);
        if (kind == AddSourceKind::git)
            return fail(add ? "ADD of a git repository is not supported: " + source
                            : "source can't be a git ref for COPY: " + source);
        if (!copy.checksum.empty() && kind != AddSourceKind::http)
            return fail("--checksum requires an http(s) source: " + source);
        if (kind == AddSourceKind::http && !add) return fail("source can't be a URL for COPY: " + source);
        if (kind != AddSourceKind::http && copy.from.kind == SourceRef::Kind::context && escapes_root(source))
            return fail("forbidden path outside the build context: " + source);
        copy.sources.push_back(std::move(source));
    }
    return {};
}

Result<CopyStep> plan_copy_words(const StageScope& scope, const dockerfile::InstructionBase& at,
                                 const CopyWords& words, CopyCommand command) {
    CopyStep copy{.command = command};
    if (!words.from.empty()) {
        KILN_ASSIGN(std::string from, scope.expand(words.from, at));
        copy.from = scope.resolve_from(from);
        // A number is a stage index, never an image name (as in BuildKit).
        std::uint64_t number = 0;
        if (copy.from.kind == SourceRef::Kind::image && parse_uint64(from, number))
            return fail(str_cat("--from=", from, " names no stage before this one (stages are numbered from 0)"));
    }
    if (!words.chown.empty()) {
        KILN_ASSIGN(copy.chown, scope.expand(words.chown, at));
    }
    if (!words.chmod.empty()) {
        KILN_ASSIGN(copy.chmod, scope.expand(words.chmod, at));
        KILN_ASSIGN(copy.mode, ModeChange::parse(copy.chmod));
    }
    for (const std::string& raw : words.excludes) {
        KILN_ASSIGN(std::string pattern, scope.expand(raw, at));
        copy.excludes.push_back(std::move(pattern));
    }
    if (!words.checksum.empty()) {
        KILN_ASSIGN(copy.checksum, scope.expand(words.checksum, at));
        KILN_TRY(validate_checksum(copy.checksum));
        if (words.sources.size() != 1 || !words.inline_sources.empty())
            return fail("--checksum can't be specified for multiple sources");
    }
    copy.parents = words.parents;

    // Docker's rules: a destination ending in "/" (or "." or "..") is a directory, a relative one is below
    // WORKDIR. An existing directory is one too, whatever it ends with: that is decided when the step runs.
    KILN_ASSIGN(std::string destination, scope.expand(words.destination, at));
    if (destination.empty()) return fail("the destination is empty");
    copy.destination_is_directory = copy.parents || destination.back() == '/' || destination == "." ||
                                    destination == ".." || destination.ends_with("/.") ||
                                    destination.ends_with("/..");
    if (destination.front() != '/') {
        const std::string& workdir = scope.config().working_dir;
        destination = (workdir.empty() ? "/" : workdir) + "/" + destination;
    }
    copy.destination = clean_path(destination);

    KILN_TRY(plan_sources(scope, at, words, copy));
    for (const dockerfile::HeredocFile& file : words.inline_sources) {
        dockerfile::HeredocFile planned = file;
        if (file.expand) {
            // As BuildKit expands heredoc bodies: quotes are text, and the escape is always '\', whatever the
            // Dockerfile's escape directive says.
            dockerfile::ShellExpander literal('\\', {.quotes_are_literal = true});
            KILN_ASSIGN(planned.content, literal.process_word(file.content, scope.lookup()));
        }
        copy.inline_sources.push_back(std::move(planned));
    }
    return copy;
}

Result<Step> planned(StageScope& scope, const dockerfile::InstructionBase& at, std::string_view keyword,
                     const CopyWords& words, CopyCommand command) {
    KILN_ASSIGN(CopyStep copy, with_location(plan_copy_words(scope, at, words, command), at.source_location()));
    Step step = step_at(scope, at, keyword);
    step.action = std::move(copy);
    return step;
}

}  // namespace

Result<Step> plan_copy(StageScope& scope, const dockerfile::CopyInstruction& copy) {
    static const std::string k_none;
    return planned(scope, copy, "COPY",
                   CopyWords{copy.sources, copy.inline_sources, copy.destination, copy.from, copy.chown,
                             copy.chmod, copy.excludes, copy.parents, k_none},
                   CopyCommand::copy);
}

// ADD is COPY plus downloads of http(s) URLs and unpacking of local archives. Git sources are refused: kiln
// does not clone repositories.
Result<Step> plan_add(StageScope& scope, const dockerfile::AddInstruction& add) {
    static const std::string k_none;
    return planned(scope, add, "ADD",
                   CopyWords{add.sources, add.inline_sources, add.destination, k_none, add.chown, add.chmod,
                             add.excludes, false, add.checksum},
                   CopyCommand::add);
}

}  // namespace kiln
