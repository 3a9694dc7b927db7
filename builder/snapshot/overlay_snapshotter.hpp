#pragma once
// The overlay snapshotter in the builder (../shared/research/sandbox.md §4, §6, §7): each base layer is
// extracted once into a directory of its own, in overlay's on-disk format; a stage's rootfs is an overlay of
// those directories with a fresh upper directory per layer-making step, and the upper is the step's diff.
// The upper then joins the lowers. Mounts live in kiln's private mount namespace (main.cpp).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "builder/snapshot/extracted_layer_store.hpp"
#include "builder/snapshot/snapshotter.hpp"
#include "common/error.hpp"
#include "common/mount_guard.hpp"
#include "images/layer.hpp"
#include "layers/extract.hpp"
#include "layers/overlay_mount.hpp"
#include "layers/rootfs.hpp"
#include "layers/snapshot_overlay.hpp"

namespace kiln {

// The memory budget's tmpfs, which a build's layer directories and steps' upper directories share: they go
// there while it has room, and to the disk once it has run out.
class MemoryPlace {
public:
    explicit MemoryPlace(std::string root = {}) : m_root(std::move(root)) {}
    const std::string& root() const { return m_root; }
    // There is a tmpfs and it has not run out.
    bool usable() const { return !m_root.empty() && !m_full; }
    // What a write that failed there tells: whether the tmpfs has (next to) no room left, in bytes or inodes.
    // If so, it is marked as run out.
    bool ran_out();
    void mark_full() { m_full = true; }

private:
    std::string m_root;
    std::atomic<bool> m_full{false};
};

// Base layers extracted in overlay format under <root>/<hex of the diffID>, each exactly once however many
// stages ask for it at the same time. With a store, layers come from it, extracted there by this build or an
// earlier one. The others go to the memory place's layers/ first while it is usable; one that does not fit
// (or fails there) is extracted under <root> again, and later ones go straight there.
class LayerDirectories {
public:
    LayerDirectories(std::string root, MemoryPlace& memory, ExtractedLayerStore* store = nullptr)
        : m_root(std::move(root)), m_memory(memory), m_store(store) {}
    // Extracts `layer` into a directory of its own, if no stage has. Layers may be extracted side by side;
    // stacked_on() then places each, bottom to top.
    Status extract(const Layer& layer, OwnershipFailure ownership_failure);
    // The directory that gives `layer` (extracted) its meaning on top of `lowers` (the directories below it,
    // topmost first). Usually its own directory, whose hardlinks into earlier layers are completed from
    // `lowers` by whichever stage asks first. Where the layer goes through what `lowers` hold (a symlink to
    // a directory) or deletes in a directory they lack, its own directory cannot say that: the layer is applied
    // through a mount of `lowers`, once per stack, and the mount's upper directory is the answer.
    Result<std::string> stacked_on(const Layer& layer, const std::vector<std::string>& lowers,
                                   OwnershipFailure ownership_failure);

private:
    struct Slot {
        std::mutex mutex;
        bool done = false;
        std::string directory;  // where it was extracted, once done
        std::vector<LowerLayerLink> links;  // until stacked_on() completes them
        LowerAssumptions assumptions;
        std::map<std::string, std::string> applied;  // lowers, joined by '\n' → the upper of the layer over them
    };
    std::shared_ptr<Slot> slot_for(const std::string& hex);
    // Applies `layer` through an overlay of `lowers` with a fresh upper, which it returns.
    Result<std::string> apply_over(Slot& slot, const Layer& layer, const std::vector<std::string>& lowers,
                                   OwnershipFailure ownership_failure);
    // Extracts `layer` into <root>/<hex>, through a partial directory; returns the stats.
    Result<ExtractStats> extract_into(const std::string& root, const Layer& layer, OwnershipFailure ownership_failure);
    std::string m_root;
    MemoryPlace& m_memory;
    ExtractedLayerStore* m_store;
    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<Slot>> m_slots;
};

// One stage's overlay: its lowers (topmost first), the upper of the step being built, and the mount of both
// at the stage's rootfs path. Unmounts on destruction.
class StageOverlay {
public:
    // Mounts `lowers` (at least one; an empty directory for FROM scratch) with a fresh upper at
    // `rootfs_path`. Step directories go below `stage_dir`, or below `memory_stage_dir` in the memory place
    // while it is usable.
    static Result<std::unique_ptr<StageOverlay>> mount(std::string stage_dir, std::vector<std::string> lowers,
                                                       std::string rootfs_path, MemoryPlace* memory = nullptr,
                                                       std::string memory_stage_dir = {});
    ~StageOverlay();
    StageOverlay(const StageOverlay&) = delete;
    StageOverlay& operator=(const StageOverlay&) = delete;

    // The spec of the mount at the rootfs path: the lowers and the current step's upper and work directories.
    const OverlayMountSpec& spec() const { return m_spec; }
    // The directory holding the current step's upper and work directories.
    const std::string& step_dir() const { return m_step_dir; }
    // Every directory the stage's filesystem is made of, topmost first, the current upper included: what a
    // stage built FROM this one stacks.
    std::vector<std::string> layer_directories() const;

    // The current step's changes, from its upper against the lowers.
    Result<UpperChanges> changes(const std::vector<std::string>& excluded);
    // A RootFs of the current upper directory, which write_layer reads the step's entries from.
    Result<RootFs> upper() const { return RootFs::open(m_spec.upper); }
    // Ends the step: its upper joins the lowers and a fresh upper is mounted at the rootfs path.
    Status next_step();
    // Mounts the same layers again, so that the mount sees what another mount of the same upper wrote.
    Status remount();
    // Puts `directory` (a layer directory) on top of the lowers, under the current upper, which must be empty.
    Status push_lower(const std::string& directory);
    // True when the current step's upper holds nothing yet.
    bool upper_is_empty() const;
    // After a step failed: when its upper is in the memory place and that has run out, the step's writes are
    // discarded, a fresh upper on the disk is mounted, and the answer is true: the step may run again there.
    Result<bool> spill_failed_step();

private:
    StageOverlay() = default;
    Status mount_current();
    Status unmount_all();
    Result<RootFs> lower_view();

    std::string m_stage_dir;
    std::string m_memory_stage_dir;
    MemoryPlace* m_memory = nullptr;
    bool m_step_in_memory = false;
    std::string m_rootfs_path;
    std::string m_step_dir;
    OverlayMountSpec m_spec;
    size_t m_steps = 0;
    MountGuard m_mount;       // the stage's rootfs
    MountGuard m_lower_view;  // the lowers alone, read-only, for scanning the upper
};

// The overlay snapshotter: layer directories shared by the build's stages, an overlay mount per stage.
class OverlaySnapshotter final : public Snapshotter {
public:
    OverlaySnapshotter(SnapshotPolicy policy, LayerSink& sink, const std::string& work_dir,
                       const ExtractionPlaces& places = {})
        : m_policy(std::move(policy)),
          m_sink(sink),
          m_memory(places.memory_dir),
          m_memory_uppers(places.memory_takes_uppers),
          m_layers(work_dir + "/layers", m_memory, places.store) {}
    const char* name() const override { return "overlay"; }
    // Layers are extracted side by side, each as soon as its blob is there; one the store holds is not read.
    bool fetches_layers_as_it_extracts() const override { return true; }
    Result<std::unique_ptr<StageFilesystem>> prepare_stage(const StageStart& start) override;

private:
    // The base's layers as directories, topmost first, each extracted once for the whole build.
    // The directories of `layers` (bottom first), extracted, stacked over `below` (topmost first).
    Result<std::vector<std::string>> layer_directories_of(const std::vector<LayerPtr>& layers,
                                                          const std::vector<std::string>& below);

    SnapshotPolicy m_policy;
    LayerSink& m_sink;
    MemoryPlace m_memory;
    bool m_memory_uppers;
    LayerDirectories m_layers;
};

}  // namespace kiln
