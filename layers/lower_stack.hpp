#pragma once
// Overlay-format layer directories (extract.hpp, WhiteoutFormat::overlay) stacked on each other: what a path is
// in the stack, and what a layer directory needs from the layers below it.

#include <string>
#include <vector>

#include "common/error.hpp"
#include "layers/extract.hpp"
#include "layers/rootfs.hpp"

namespace kiln {

// Completes the hardlinks of an overlay-format layer directory `layer` into earlier layers: each target is
// copied (content, mode, owner, extended attributes, mtime) from the layer of `lowers` (the layer directories
// below, topmost first) whose entry shows through the stack, as overlayfs would show it; links of one layer to
// the same target share the copy. A target that the stack does not hold is an error naming it.
Status copy_from_lower_layers(const RootFs& layer, const std::vector<LowerLayerLink>& links,
                              const std::vector<std::string>& lowers, const std::string& layer_name);

// Whether a layer directory whose extraction recorded `assumptions` means, stacked on `lowers` (topmost
// first), what applying its layer onto the tree of `lowers` would. When it does not, the layer must be applied
// through a mount of `lowers` instead.
Result<bool> lower_stack_keeps(const LowerAssumptions& assumptions, const std::vector<std::string>& lowers);

}  // namespace kiln
