#include "tests/integration/corpus_compare.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "common/files.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "tests/integration/harness.hpp"

namespace kiln::test {
namespace {

// The RUN mount points that buildah's chroot isolation leaves behind (B1).
constexpr const char* k_buildah_mount_stubs[] = {
    "/dev", "/proc", "/sys", "/run", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"};
constexpr size_t k_max_listed_differences = 40;

// B1: an empty mount-point stub that the base lacks is buildah's, never the Dockerfile's. Only buildah's tree
// is touched: kiln must not leave these, so one in kiln's image is a difference.
void drop_buildah_mount_stubs(ImageTree& buildah_tree, const ImageTree& base_tree) {
    for (const char* stub : k_buildah_mount_stubs) {
        auto found = buildah_tree.find(stub);
        if (found == buildah_tree.end() || base_tree.contains(stub)) continue;
        auto next = std::next(found);
        bool empty_dir = found->second.kind == TreeEntry::Kind::directory &&
                         (next == buildah_tree.end() || !next->first.starts_with(str_cat(stub, "/")));
        bool empty_file = found->second.kind == TreeEntry::Kind::regular && found->second.size == 0;
        if (empty_dir || empty_file) buildah_tree.erase(found);
    }
}

// B8: an empty directory at a declared volume that kiln's image lacks is buildah's, made when it commits a
// --layers=false build. Only buildah's tree is touched: a volume directory in kiln's image that buildah lacks
// stays a difference.
void drop_buildah_volume_directories(ImageTree& buildah_tree, const ImageTree& kiln_tree,
                                     const nlohmann::json& buildah_config) {
    const nlohmann::json* volumes = nullptr;
    if (buildah_config.contains("config") && buildah_config["config"].contains("Volumes"))
        volumes = &buildah_config["config"]["Volumes"];
    if (!volumes || !volumes->is_object()) return;
    for (const auto& [volume, unused] : volumes->items()) {
        std::string path = volume.starts_with('/') ? volume : "/" + volume;
        while (path.size() > 1 && path.back() == '/') path.pop_back();
        auto found = buildah_tree.find(path);
        if (found == buildah_tree.end() || kiln_tree.contains(path)) continue;
        auto next = std::next(found);
        bool empty_dir = found->second.kind == TreeEntry::Kind::directory &&
                         (next == buildah_tree.end() || !next->first.starts_with(path + "/"));
        if (empty_dir) buildah_tree.erase(found);
    }
}

// A volatile file's content is the build's time: its type, mode and owner are compared, its size and content
// not.
void forget_content(ImageTree& tree, const std::vector<std::string>& paths) {
    for (const std::string& path : paths) {
        auto found = tree.find(path);
        if (found == tree.end() || found->second.kind != TreeEntry::Kind::regular) continue;
        found->second.size = 0;
        found->second.sha256 = "(volatile)";
    }
}

// B6: what Docker's COPY makes of a context file that buildah cannot copy: its content and mode, owner 0:0,
// and missing parents as directories 0755 0:0.
Status add_copied_file(ImageTree& tree, const std::string& image_path, const std::string& context_file) {
    auto st = lstat_path(context_file);
    if (!st || !S_ISREG(st->st_mode)) return fail(context_file + " is not a regular file");
    KILN_ASSIGN(std::string content, read_file(context_file));
    for (size_t slash = image_path.find('/', 1); slash != std::string::npos;
         slash = image_path.find('/', slash + 1))
        tree.emplace(image_path.substr(0, slash),
                     TreeEntry{.kind = TreeEntry::Kind::directory, .mode = 0755});
    tree[image_path] = TreeEntry{.kind = TreeEntry::Kind::regular,
                                 .mode = st->st_mode & 07777u,
                                 .size = content.size(),
                                 .sha256 = sha256_hex(content)};
    return {};
}

// B7: Env in name order. A name given twice would make the order matter: that is a difference of its own.
void sort_env(nlohmann::json& config, const std::string& builder, std::vector<std::string>& problems) {
    if (!config.contains("Env")) return;
    std::vector<std::string> env = config["Env"];
    std::set<std::string> names;
    for (const std::string& entry : env)
        if (!names.insert(entry.substr(0, entry.find('='))).second)
            problems.push_back(str_cat(builder, "'s Env names ", entry.substr(0, entry.find('=')), " twice"));
    std::sort(env.begin(), env.end());
    config["Env"] = env;
}

void append_capped(std::vector<std::string>& problems, const std::string& heading,
                   const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    std::string text = str_cat(heading, " (", lines.size(), "):");
    for (size_t i = 0; i < lines.size() && i < k_max_listed_differences; ++i) text += "\n    " + lines[i];
    if (lines.size() > k_max_listed_differences)
        text += str_cat("\n    … and ", lines.size() - k_max_listed_differences, " more");
    problems.push_back(text);
}

// _snapshotter_ignorelist: kaniko's log check ("Resolved symlink /hello to /dev/null", no "Adding whiteout
// for /dev") becomes a check of kiln's layers: none may hold /dev, anything below it, or a whiteout for it.
Status check_no_dev_in_layers(const PulledImage& kiln, std::vector<std::string>& problems) {
    for (const std::string& layer : kiln.layer_files) {
        KILN_ASSIGN(std::vector<std::string> paths, layer_paths(layer));
        for (const std::string& path : paths)
            if (path == "/dev" || path.starts_with("/dev/") || path == "/.wh.dev")
                problems.push_back("a layer of kiln's holds " + path);
    }
    return {};
}

}  // namespace

Result<std::vector<std::string>> differences_from_buildah(const CorpusCase& corpus_case,
                                                          const CorpusImages& images) {
    std::vector<std::string> problems;
    KILN_ASSIGN(ImageTree kiln_tree, with_context(flatten_layers(images.kiln.layer_files), "kiln's image"));
    KILN_ASSIGN(ImageTree buildah_tree,
                with_context(flatten_layers(images.buildah.layer_files), "buildah's image"));
    drop_buildah_mount_stubs(buildah_tree, images.base_tree);
    drop_buildah_volume_directories(buildah_tree, kiln_tree, images.buildah.config);
    forget_content(kiln_tree, corpus_case.volatile_paths);
    forget_content(buildah_tree, corpus_case.volatile_paths);
    for (const auto& [image_path, context_file] : corpus_case.copied_without_buildah)
        KILN_TRY(add_copied_file(buildah_tree, image_path, images.context + "/" + context_file));
    append_capped(problems, "filesystem differs",
                  tree_differences(kiln_tree, buildah_tree, "kiln", "buildah"));

    nlohmann::json kiln_config = runtime_config(images.kiln.config);
    nlohmann::json buildah_config = runtime_config(images.buildah.config);
    sort_env(kiln_config, "kiln", problems);
    sort_env(buildah_config, "buildah", problems);
    append_capped(problems, "runtime config differs",
                  config_differences(kiln_config, buildah_config, "kiln", "buildah"));

    if (case_name(corpus_case) == "Dockerfile_test_snapshotter_ignorelist")
        KILN_TRY(check_no_dev_in_layers(images.kiln, problems));
    return problems;
}

}  // namespace kiln::test
