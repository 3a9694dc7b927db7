#pragma once
// An overlay mounted by root of a user namespace rather than by kiln. Overlay does its work in the layers
// with the credentials of whoever created it, so an overlay of idmapped layer directories must be created by
// an id that their idmapping maps (kiln's host root is not: the kernel answers EOVERFLOW).

#include "common/error.hpp"
#include "common/fd.hpp"
#include "layers/overlay_mount.hpp"

namespace kiln {

// Creates the overlay `spec` ("userxattr", fsconfig "lowerdir+") as uid 0 of the user namespace `userns_fd`,
// in a short-lived child, and returns it as a detached mount. The child resolves the spec's paths, relative
// to `directory_fd`, in a copy of kiln's mount namespace, with the namespace's ids: every directory on the
// way must be searchable by them.
Result<UniqueFd> make_overlay_mount_in_userns(const OverlayMountSpec& spec, int userns_fd, int directory_fd);

}  // namespace kiln
