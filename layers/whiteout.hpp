#pragma once
// The names by which image layers mark deletions (the OCI image spec's whiteouts, from aufs): a ".wh.NAME"
// entry deletes NAME from the layers below, and the opaque marker in a directory hides everything they held
// there.

#include <string_view>

namespace kiln {

inline constexpr std::string_view k_whiteout_prefix = ".wh.";
// ".wh..wh.*" names are aufs bookkeeping; only the opaque marker among them means anything to an image.
inline constexpr std::string_view k_whiteout_meta_prefix = ".wh..wh.";
inline constexpr std::string_view k_opaque_marker = ".wh..wh..opq";

}  // namespace kiln
