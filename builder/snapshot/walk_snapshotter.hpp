#pragma once
// The walk snapshotter: a stage's rootfs is a plain directory holding its base's layers, extracted; a step's
// change is what a RUN's before and after lstat walks differ by, or the paths a COPY reports. It works
// everywhere, mounts nothing, and costs a walk of the rootfs per RUN (the last RUN's after-state is reused as
// the next one's before-state while nothing else touches the rootfs).

#include "builder/snapshot/snapshotter.hpp"

namespace kiln {

class WalkSnapshotter final : public Snapshotter {
public:
    WalkSnapshotter(SnapshotPolicy policy, LayerSink& sink) : m_policy(std::move(policy)), m_sink(sink) {}
    const char* name() const override { return "walk"; }
    Result<std::unique_ptr<StageFilesystem>> prepare_stage(const StageStart& start) override;

private:
    SnapshotPolicy m_policy;
    LayerSink& m_sink;
};

}  // namespace kiln
