#include "tests/integration/flat_image.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <memory>
#include <set>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

struct ArchiveReadFree {
    void operator()(archive* reader) const { archive_read_free(reader); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadFree>;

// "/a/b" for "./a//b/", "" for the root; ".." anywhere is refused.
Result<std::string> normalize_path(std::string_view raw) {
    std::vector<std::string> parts;
    for (const std::string& part : split(raw, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") return fail(str_cat("layer path escapes the root: ", raw));
        parts.push_back(part);
    }
    return parts.empty() ? std::string() : "/" + join(parts, "/");
}

std::string parent_of(const std::string& path) {
    return path.substr(0, path.rfind('/'));
}

// Removes everything below `dir` ("" is the root), except the paths in `keep`.
void erase_below(ImageTree& tree, const std::string& dir, const std::set<std::string>& keep = {}) {
    const std::string prefix = dir + "/";
    for (auto it = tree.lower_bound(prefix); it != tree.end() && it->first.starts_with(prefix);)
        it = keep.contains(it->first) ? std::next(it) : tree.erase(it);
}

// Parents that the tar does not list are created the way a runtime's extractor creates them.
void add_missing_parents(ImageTree& tree, const std::string& path) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        std::string parent = path.substr(0, slash);
        if (!tree.contains(parent))
            tree[parent] = TreeEntry{.kind = TreeEntry::Kind::directory, .mode = 0755};
    }
}

Result<TreeEntry> read_entry(archive* reader, archive_entry* entry, const std::string& path) {
    TreeEntry result;
    result.mode = static_cast<unsigned>(archive_entry_perm(entry)) & 07777;
    result.uid = static_cast<unsigned>(archive_entry_uid(entry));
    result.gid = static_cast<unsigned>(archive_entry_gid(entry));
    switch (archive_entry_filetype(entry)) {
        case AE_IFDIR:
            result.kind = TreeEntry::Kind::directory;
            break;
        case AE_IFLNK:
            result.kind = TreeEntry::Kind::symlink;
            result.link_target = archive_entry_symlink(entry) ? archive_entry_symlink(entry) : "";
            break;
        case AE_IFCHR:
            result.kind = TreeEntry::Kind::character_device;
            break;
        case AE_IFBLK:
            result.kind = TreeEntry::Kind::block_device;
            break;
        case AE_IFIFO:
            result.kind = TreeEntry::Kind::fifo;
            break;
        case AE_IFREG: {
            result.kind = TreeEntry::Kind::regular;
            Sha256 hash;
            char buffer[65536];
            for (;;) {
                la_ssize_t n = archive_read_data(reader, buffer, sizeof buffer);
                if (n < 0) return fail(str_cat("reading ", path, ": ", archive_error_string(reader)));
                if (n == 0) break;
                hash.update(buffer, static_cast<size_t>(n));
                result.size += static_cast<std::uint64_t>(n);
            }
            result.sha256 = hash.finish_hex();
            break;
        }
        default:
            return fail(str_cat(path, ": unsupported tar entry type ", archive_entry_filetype(entry)));
    }
    if (result.kind == TreeEntry::Kind::character_device || result.kind == TreeEntry::Kind::block_device) {
        result.device_major = static_cast<unsigned>(archive_entry_rdevmajor(entry));
        result.device_minor = static_cast<unsigned>(archive_entry_rdevminor(entry));
    }
    return result;
}

Result<ArchiveReader> open_layer(const std::string& file) {
    ArchiveReader reader(archive_read_new());
    archive_read_support_filter_all(reader.get());
    archive_read_support_format_tar(reader.get());
    archive_read_support_format_empty(reader.get());
    if (archive_read_open_filename(reader.get(), file.c_str(), 1 << 16) != ARCHIVE_OK)
        return fail(str_cat("opening layer ", file, ": ", archive_error_string(reader.get())));
    return reader;
}

Status apply_layer(const std::string& file, ImageTree& tree) {
    KILN_ASSIGN(ArchiveReader reader, open_layer(file));
    std::set<std::string> added;  // whiteouts hide lower layers only, never this layer's own entries
    for (;;) {
        archive_entry* entry = nullptr;
        int rc = archive_read_next_header(reader.get(), &entry);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN)
            return fail(str_cat("reading layer ", file, ": ", archive_error_string(reader.get())));
        KILN_ASSIGN(std::string path, normalize_path(archive_entry_pathname(entry)));
        if (path.empty()) continue;  // the root directory's own entry
        const std::string name = path.substr(path.rfind('/') + 1);
        const std::string dir = parent_of(path);
        if (name == ".wh..wh..opq") {
            erase_below(tree, dir, added);
            continue;
        }
        if (name.starts_with(".wh.")) {
            const std::string hidden = dir + "/" + name.substr(4);
            tree.erase(hidden);
            erase_below(tree, hidden);
            continue;
        }
        TreeEntry result;
        if (const char* hardlink = archive_entry_hardlink(entry)) {
            KILN_ASSIGN(std::string target, normalize_path(hardlink));
            auto found = tree.find(target);
            if (found == tree.end())
                return fail(str_cat(path, ": hard link to missing ", target, " in ", file));
            result = found->second;
        } else {
            KILN_ASSIGN(result, read_entry(reader.get(), entry, path));
        }
        auto existing = tree.find(path);
        if (existing != tree.end() && (existing->second.kind != TreeEntry::Kind::directory ||
                                       result.kind != TreeEntry::Kind::directory))
            erase_below(tree, path);
        add_missing_parents(tree, path);
        tree[path] = result;
        added.insert(path);
    }
    return {};
}

const char* kind_name(TreeEntry::Kind kind) {
    switch (kind) {
        case TreeEntry::Kind::regular:
            return "file";
        case TreeEntry::Kind::directory:
            return "dir";
        case TreeEntry::Kind::symlink:
            return "symlink";
        case TreeEntry::Kind::character_device:
            return "chardev";
        case TreeEntry::Kind::block_device:
            return "blockdev";
        case TreeEntry::Kind::fifo:
            return "fifo";
    }
    return "?";
}

std::string octal(unsigned mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", mode);
    return text;
}

Result<nlohmann::json> read_json(const std::string& path) {
    KILN_ASSIGN(std::string text, read_file(path));
    nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded()) return fail(path + " is not JSON");
    return json;
}

// A blob of a skopeo `dir:` copy is stored under its hex digest.
std::string blob_path(const std::string& dir, const std::string& digest) {
    return dir + "/" + digest.substr(digest.find(':') + 1);
}

bool is_empty_value(const nlohmann::json& value) {
    if (value.is_string()) return value.get_ref<const std::string&>().empty();
    return value.is_null() || ((value.is_array() || value.is_object()) && value.empty());
}

}  // namespace

std::string describe(const TreeEntry& entry) {
    std::string text = str_cat(kind_name(entry.kind), " ", octal(entry.mode), " ", entry.uid, ":", entry.gid);
    if (entry.kind == TreeEntry::Kind::regular)
        text += str_cat(" ", entry.size, " B sha256:", entry.sha256.substr(0, 12));
    if (entry.kind == TreeEntry::Kind::symlink) text += " -> " + entry.link_target;
    if (entry.kind == TreeEntry::Kind::character_device || entry.kind == TreeEntry::Kind::block_device)
        text += str_cat(" ", entry.device_major, ",", entry.device_minor);
    return text;
}

Result<PulledImage> pull_image(const std::string& reference, const std::string& dir) {
    std::vector<std::string> argv = {
        "skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + reference, "dir:" + dir};
    KILN_ASSIGN(ProcessResult copied, run_process(argv));
    if (copied.exit_code != 0)
        return fail(str_cat(join(argv, " "), " exited with ", copied.exit_code, ": ", copied.stderr_bytes));
    PulledImage image;
    KILN_ASSIGN(image.manifest, read_json(dir + "/manifest.json"));
    if (!image.manifest.contains("config") || !image.manifest.contains("layers"))
        return fail(reference + ": the manifest is not an image manifest");
    KILN_ASSIGN(image.config, read_json(blob_path(dir, image.manifest["config"]["digest"])));
    for (const auto& layer : image.manifest["layers"])
        image.layer_files.push_back(blob_path(dir, layer["digest"]));
    return image;
}

Result<ImageTree> flatten_layers(const std::vector<std::string>& layer_files) {
    ImageTree tree;
    for (const std::string& file : layer_files) KILN_TRY(apply_layer(file, tree));
    return tree;
}

Result<std::vector<std::string>> layer_paths(const std::string& layer_file) {
    KILN_ASSIGN(ArchiveReader reader, open_layer(layer_file));
    std::vector<std::string> paths;
    for (;;) {
        archive_entry* entry = nullptr;
        int rc = archive_read_next_header(reader.get(), &entry);
        if (rc == ARCHIVE_EOF) return paths;
        if (rc < ARCHIVE_WARN)
            return fail(str_cat("reading layer ", layer_file, ": ", archive_error_string(reader.get())));
        KILN_ASSIGN(std::string path, normalize_path(archive_entry_pathname(entry)));
        paths.push_back(path.empty() ? "/" : path);
    }
}

std::vector<std::string> tree_differences(const ImageTree& left, const ImageTree& right,
                                          const std::string& left_name, const std::string& right_name) {
    std::vector<std::string> lines;
    auto l = left.begin();
    auto r = right.begin();
    while (l != left.end() || r != right.end()) {
        if (r == right.end() || (l != left.end() && l->first < r->first)) {
            lines.push_back(str_cat(l->first, ": only in ", left_name, ": ", describe(l->second)));
            ++l;
        } else if (l == left.end() || r->first < l->first) {
            lines.push_back(str_cat(r->first, ": only in ", right_name, ": ", describe(r->second)));
            ++r;
        } else {
            if (l->second != r->second)
                lines.push_back(str_cat(l->first, ": ", left_name, " ", describe(l->second), " vs ",
                                        right_name, " ", describe(r->second)));
            ++l;
            ++r;
        }
    }
    return lines;
}

nlohmann::json runtime_config(const nlohmann::json& image_config) {
    static const char* const k_fields[] = {"User",       "Env",         "Entrypoint",   "Cmd",
                                           "WorkingDir", "Labels",      "ExposedPorts", "Volumes",
                                           "StopSignal", "Healthcheck", "Shell",        "OnBuild"};
    nlohmann::json result = nlohmann::json::object();
    if (!image_config.contains("config") || !image_config["config"].is_object()) return result;
    const nlohmann::json& config = image_config["config"];
    for (const char* field : k_fields)
        if (config.contains(field) && !is_empty_value(config[field])) result[field] = config[field];
    return result;
}

std::vector<std::string> config_differences(const nlohmann::json& left, const nlohmann::json& right,
                                            const std::string& left_name, const std::string& right_name) {
    std::set<std::string> fields;
    for (const auto& [field, value] : left.items()) fields.insert(field);
    for (const auto& [field, value] : right.items()) fields.insert(field);
    std::vector<std::string> lines;
    for (const std::string& field : fields) {
        nlohmann::json l = left.value(field, nlohmann::json());
        nlohmann::json r = right.value(field, nlohmann::json());
        if (l != r)
            lines.push_back(
                str_cat(field, ": ", left_name, " ", l.dump(), " vs ", right_name, " ", r.dump()));
    }
    return lines;
}

}  // namespace kiln::test
