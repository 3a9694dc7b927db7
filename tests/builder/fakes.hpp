#pragma once
// Stand-ins for the builder's boundaries (images from registries, the snapshotter, the RUN sandbox, the layer
// cache), so that the planner, the scheduler and the stage builder can be tested without root, namespaces or a
// registry. Each boundary is also tested for real: RegistryImageSource by tests/builder/sources, the walk and
// overlay snapshotters by tests/integration/snapshotter_test.cpp, the sandbox by tests/builder/sandbox, the
// local cache by tests/builder/cache and tests/integration/cache_test.cpp.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "builder/cache/layer_cache.hpp"
#include "builder/sandbox/sandbox.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "builder/sources/image_source.hpp"
#include "common/files.hpp"
#include "common/log.hpp"
#include "common/sha256.hpp"
#include "common/strings.hpp"
#include "layers/rootfs.hpp"

namespace kiln::test {

// A layer known only by name: what the fakes hand out as committed layers.
class NamedLayer final : public Layer {
public:
    explicit NamedLayer(const std::string& name)
        : m_descriptor{.media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
                       .digest = Digest::from_sha256_hex(sha256_hex("blob " + name)),
                       .size = 1},
          m_diff_id(Digest::from_sha256_hex(sha256_hex("tar " + name))) {}
    const Descriptor& descriptor() const override { return m_descriptor; }
    const Digest& diff_id() const override { return m_diff_id; }
    Result<std::unique_ptr<Reader>> open_blob() const override { return fail("a named layer has no bytes"); }

private:
    Descriptor m_descriptor;
    Digest m_diff_id;
};

// A layer known by its descriptor and diffID only.
class DescribedLayer final : public Layer {
public:
    // A fetchable one reads as no bytes (the fake snapshotter reads none); another fails as a broken download.
    explicit DescribedLayer(const Layer& layer, bool fetchable = true)
        : m_descriptor(layer.descriptor()), m_diff_id(layer.diff_id()), m_fetchable(fetchable) {}
    const Descriptor& descriptor() const override { return m_descriptor; }
    const Digest& diff_id() const override { return m_diff_id; }
    Result<std::unique_ptr<Reader>> open_blob() const override {
        if (!m_fetchable) return fail(str_cat("blob ", m_descriptor.digest.str(), " failed verification"));
        return std::unique_ptr<Reader>(std::make_unique<StringReader>(""));
    }

private:
    Descriptor m_descriptor;
    Digest m_diff_id;
    bool m_fetchable;
};

// A layer cache in memory; it counts what it was asked.
class FakeLayerCache final : public LayerCache {
public:
    const char* name() const override { return "fake"; }
    Result<std::optional<CachedStep>> lookup(const Digest& key) override {
        std::lock_guard lock(m_mutex);
        ++lookups;
        auto found = m_entries.find(key.str());
        if (found == m_entries.end()) return std::nullopt;
        if (found->second && broken_layers)
            return CachedStep{.layer = std::make_shared<DescribedLayer>(*found->second, false), .created = 0, .source = name()};
        return CachedStep{.layer = found->second, .created = 0, .source = name()};
    }
    Status store(const Digest& key, const LayerPtr& layer) override {
        std::lock_guard lock(m_mutex);
        ++stores;
        m_entries[key.str()] = layer ? std::make_shared<DescribedLayer>(*layer) : nullptr;
        return {};
    }
    std::optional<KeyInputs> previous_inputs(const Digest& identity) override {
        std::lock_guard lock(m_mutex);
        auto found = m_inputs.find(identity.str());
        if (found == m_inputs.end()) return std::nullopt;
        return found->second;
    }
    Status record_inputs(const Digest& identity, const KeyInputs& inputs) override {
        std::lock_guard lock(m_mutex);
        m_inputs[identity.str()] = inputs;
        return {};
    }
    size_t lookups = 0;
    size_t stores = 0;
    bool broken_layers = false;  // hits' layers fail when fetched, as a corrupted registry blob does

private:
    std::mutex m_mutex;
    std::map<std::string, LayerPtr> m_entries;
    std::map<std::string, KeyInputs> m_inputs;
};

// Images by name, each a config without layers; it records what it was asked.
class FakeImageSource final : public ImageSource {
public:
    void add(const std::string& name, RunConfig config) { m_images[name] = std::move(config); }

    Result<SourceImage> resolve(const std::string& name, const Platform& platform) override {
        std::lock_guard lock(m_mutex);
        m_resolved.push_back(name);
        auto found = m_images.find(name);
        if (found == m_images.end()) return fail(str_cat("no image named ", name, " in the fake registry"));
        ImageConfig config{.config = found->second};
        config.os = platform.os;
        config.architecture = platform.architecture;
        KILN_ASSIGN(Image image, Image::create(std::move(config), {}));
        return SourceImage{.name = name,
                           .resolved = "fake/" + name,
                           .manifest_digest = Digest::from_sha256_hex(sha256_hex("manifest " + name)),
                           .image = std::move(image),
                           .repository = std::nullopt,
                           .layout_directory = {}};
    }
    Status fetch_layers(const SourceImage& image) override {
        std::lock_guard lock(m_mutex);
        m_fetched.push_back(image.name);
        return {};
    }
    std::vector<std::string> resolved() const {
        std::lock_guard lock(m_mutex);
        return m_resolved;
    }
    std::vector<std::string> fetched() const {
        std::lock_guard lock(m_mutex);
        return m_fetched;
    }

private:
    std::map<std::string, RunConfig> m_images;
    mutable std::mutex m_mutex;
    std::vector<std::string> m_resolved;
    std::vector<std::string> m_fetched;
};

// Runs nothing: records each step's spec and answers with `exit_code`.
class FakeStepRunner final : public StepRunner {
public:
    Result<int> run(const RunSpec& spec) const override {
        log_info("fake run: ", join(spec.argv, " "));
        std::lock_guard lock(m_mutex);
        m_runs.push_back(spec);
        return exit_code;
    }
    std::vector<RunSpec> runs() const {
        std::lock_guard lock(m_mutex);
        return m_runs;
    }
    int exit_code = 0;

private:
    mutable std::mutex m_mutex;
    mutable std::vector<RunSpec> m_runs;
};

// What the fake snapshotter was asked, in order, across all stages: "prepare stage 0", "commit stage 0: …".
class SnapshotLog {
public:
    void add(std::string event) {
        std::lock_guard lock(m_mutex);
        m_events.push_back(std::move(event));
    }
    std::vector<std::string> events() const {
        std::lock_guard lock(m_mutex);
        return m_events;
    }

private:
    mutable std::mutex m_mutex;
    std::vector<std::string> m_events;
};

// A stage's rootfs as a plain directory; each commit is a NamedLayer "<stage>:<n>" and is logged with what the
// step reported.
class FakeStageFilesystem final : public StageFilesystem {
public:
    FakeStageFilesystem(std::string name, std::string path, RootFs root, SnapshotLog& log)
        : m_name(std::move(name)), m_path(std::move(path)), m_root(std::move(root)), m_log(log) {}
    const std::string& path() const override { return m_path; }
    const RootFs& root() const override { return m_root; }
    Result<std::optional<OverlayMountSpec>> prepare_run(const std::vector<std::string>& discarded) override {
        m_log.add(str_cat("prepare run ", m_name, ": discarding [", join(discarded, ","), "]"));
        return std::nullopt;
    }
    Result<std::optional<LayerPtr>> commit(const StepWrites& writes) override {
        m_log.add(str_cat("commit ", m_name, ": ", writes.anything ? "anything" : "paths", " [",
                          join(writes.paths, ","), "] discarding [", join(writes.discarded, ","), "]"));
        return std::optional<LayerPtr>(std::make_shared<NamedLayer>(str_cat(m_name, ":", ++m_commits)));
    }
    Status apply_layer(const Layer& layer) override {
        m_log.add(str_cat("apply ", m_name, ": ", layer.descriptor().digest.short_str()));
        return {};
    }
    Result<std::optional<LayerPtr>> finish() override {
        m_log.add("finish " + m_name);
        return std::nullopt;
    }
    std::vector<std::string> layer_directories() const override { return {}; }
    Result<bool> hand_over(const std::string&) override { return false; }

private:
    std::string m_name;
    std::string m_path;
    RootFs m_root;
    SnapshotLog& m_log;
    size_t m_commits = 0;
};

class FakeSnapshotter final : public Snapshotter {
public:
    const char* name() const override { return "fake"; }
    Result<std::unique_ptr<StageFilesystem>> prepare_stage(const StageStart& start) override {
        std::string name = start.directory.substr(start.directory.rfind('/') + 1);
        log.add(str_cat("prepare stage ", name, start.parent ? " from its parent" : "", " with ",
                        start.base.layers().size(), " base layer(s)"));
        std::string path = start.directory + "/rootfs";
        KILN_TRY(make_directories(path, 0755));
        KILN_ASSIGN(RootFs root, RootFs::open(path));
        auto stage = std::make_unique<FakeStageFilesystem>("stage " + name, path, std::move(root), log);
        for (const LayerPtr& layer : start.cached) KILN_TRY(stage->apply_layer(*layer));
        return std::unique_ptr<StageFilesystem>(std::move(stage));
    }
    SnapshotLog log;
};

}  // namespace kiln::test
