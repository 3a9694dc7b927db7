#include "builder/commands/commands.hpp"

#include <fcntl.h>

#include "builder/base_image.hpp"
#include "builder/copy_files.hpp"
#include "builder/user_db.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/strings.hpp"

namespace kiln {
namespace {

Result<mode_t> parse_chmod(const std::string& text) {
    if (text.empty() || text.size() > 5) return fail(str_cat("invalid --chmod \"", text, "\": use octal, e.g. 0755"));
    mode_t mode = 0;
    for (char c : text) {
        if (c < '0' || c > '7') return fail(str_cat("invalid --chmod \"", text, "\": use octal, e.g. 0755"));
        mode = mode * 8 + static_cast<mode_t>(c - '0');
    }
    if (mode > 07777) return fail(str_cat("invalid --chmod \"", text, "\": more than 07777"));
    return mode;
}

// The filesystem COPY --from reads: an earlier stage's rootfs, or an image (a --build-context or a registry
// reference) extracted once into the work directory.
Result<std::string> copy_source_directory(StageState& state, const dockerfile::InstructionBase& at,
                                          const std::string& from) {
    BuildSession& session = state.session;
    if (auto stage = find_stage_reference(session.dockerfile, from, state.stage.index, /*allow_index=*/true)) {
        auto completed = session.completed.find(*stage);
        if (completed == session.completed.end() || completed->second.rootfs_path.empty())
            return fail(str_cat(state.where(at), ": stage ", from, " is not available"));
        return completed->second.rootfs_path;
    }
    if (auto cached = session.copy_source_images.find(from); cached != session.copy_source_images.end())
        return cached->second;
    KILN_ASSIGN(Image image, with_context(load_base_image(session, from, session.platform), state.where(at)));
    std::string dir = str_cat(session.work_dir, "/copy-sources/", session.copy_source_images.size());
    KILN_TRY(make_directories(dir, 0755));
    KILN_ASSIGN(RootFs root, RootFs::open(dir));
    KILN_TRY_CONTEXT(materialize_rootfs(image, root, ownership_failure_policy()), str_cat("COPY --from=", from));
    session.copy_source_images.emplace(from, dir);
    return dir;
}

std::string basename_of(const std::string& cleaned) {
    size_t slash = cleaned.rfind('/');
    return slash == std::string::npos ? cleaned : cleaned.substr(slash + 1);
}

}  // namespace

Status copy_into_stage(StageState& state, const dockerfile::InstructionBase& at, const CopyRequest& request) {
    const RunConfig& config = state.image.config().config;
    CopyOptions options;
    if (!request.chown.empty()) {
        KILN_ASSIGN(std::string chown, state.expand(request.chown, at));
        KILN_ASSIGN(auto ids, with_context(resolve_chown(state.rootfs, chown), state.where(at)));
        options.owner = CopyOwner{ids.first, ids.second};
    } else if (request.from.empty()) {
        options.owner = CopyOwner{0, 0};  // context files belong to root in the image, whoever owns them here
    }
    if (!request.chmod.empty()) {
        KILN_ASSIGN(std::string chmod, state.expand(request.chmod, at));
        KILN_ASSIGN(options.mode, with_context(parse_chmod(chmod), state.where(at)));
    }

    std::optional<RootFs> source_root;
    if (request.from.empty()) {
        options.ignore = state.session.context.ignore();
    } else {
        KILN_ASSIGN(std::string from, state.expand(request.from, at));
        KILN_ASSIGN(std::string dir, copy_source_directory(state, at, from));
        KILN_ASSIGN(source_root, RootFs::open(dir));
    }
    const RootFs& from_root = source_root ? *source_root : state.session.context.root();

    KILN_ASSIGN(std::string destination, state.expand(request.destination, at));
    if (destination.empty()) return std::unexpected(instruction_error(state, at, "the destination is empty"));
    bool dest_is_dir = destination.back() == '/' || (destination.size() >= 2 && destination.ends_with("/."));
    if (destination.front() != '/')
        destination = (config.working_dir.empty() ? "/" : config.working_dir) + "/" + destination;
    std::string dest = clean_path(destination);

    std::vector<std::string> sources;
    for (const std::string& raw : request.sources) {
        KILN_ASSIGN(std::string pattern, state.expand(raw, at));
        if (request.from.empty() && escapes_root(pattern))
            return std::unexpected(instruction_error(state, at, "forbidden path outside the build context: " + pattern));
        KILN_ASSIGN(auto matched, with_context(expand_sources(from_root, pattern, options.ignore), state.where(at)));
        sources.insert(sources.end(), matched.begin(), matched.end());
    }
    size_t total = sources.size() + request.inline_sources.size();
    if (total == 0) return std::unexpected(instruction_error(state, at, "no source files were specified"));
    if (total > 1 && !dest_is_dir)
        return std::unexpected(instruction_error(
            state, at, "when copying more than one source, the destination must be a directory and end with a /"));
    // A single file copied onto an existing directory lands inside it.
    if (!dest_is_dir && state.rootfs.open(dest, O_PATH | O_DIRECTORY)) dest_is_dir = true;

    std::vector<std::string> written;
    for (const std::string& source : sources) {
        KILN_ASSIGN(UniqueFd probe, from_root.open(source, O_PATH));
        struct stat st;
        if (::fstat(probe.get(), &st) != 0) return fail_errno(str_cat("stat ", from_root.display(source)));
        std::string target = S_ISDIR(st.st_mode) || !dest_is_dir ? dest : (dest.empty() ? "" : dest + "/") + basename_of(source);
        KILN_TRY_CONTEXT(copy_path(from_root, source, state.rootfs, target, options, written), state.where(at));
    }
    for (const dockerfile::HeredocFile& file : request.inline_sources) {
        std::string content = file.content;
        if (file.expand) {
            dockerfile::ShellExpander literal(state.expander.escape(), {.quotes_are_literal = true});
            KILN_ASSIGN(content, with_context(literal.process_word(content, state.lookup()), state.where(at)));
        }
        std::string target = dest_is_dir ? (dest.empty() ? "" : dest + "/") + file.name : dest;
        KILN_TRY_CONTEXT(write_inline_file(state.rootfs, target, content, options, written), state.where(at));
    }
    std::vector<LayerEntry> entries;
    for (const std::string& path : written) entries.push_back(LayerEntry{.path = path});
    return state.commit_layer(entries, at.original);
}

Status execute_copy(StageState& state, const dockerfile::CopyInstruction& instruction) {
    if (instruction.parents || !instruction.excludes.empty())
        return std::unexpected(instruction_error(state, instruction, "COPY --parents and --exclude are not supported yet"));
    return copy_into_stage(state, instruction,
                           CopyRequest{.sources = instruction.sources,
                                       .inline_sources = instruction.inline_sources,
                                       .destination = instruction.destination,
                                       .from = instruction.from,
                                       .chown = instruction.chown,
                                       .chmod = instruction.chmod});
}

}  // namespace kiln
