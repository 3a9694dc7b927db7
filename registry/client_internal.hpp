#pragma once
// Pieces of RegistryClient shared by client.cpp, manifests.cpp and blobs.cpp; not part of the library's interface.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "registry/client.hpp"

namespace kiln {

// One registry operation: what the error messages call it, the repository it touches and the access it needs.
struct RegistryClient::Call {
    std::string what;  // "GET manifest library/busybox:latest from docker.io"
    const Reference& repository;
    RepositoryAccess access;
};

// A request body: bytes in memory can be sent again (after a 401, on a retry), a stream only once.
struct RegistryClient::RequestBody {
    std::optional<std::string_view> bytes;
    Reader* stream = nullptr;
    std::uint64_t stream_size = 0;
};

// Bound on a whole exchange of a small document (manifest, config, upload start); layers have only the
// connect and low-speed limits.
inline constexpr std::chrono::milliseconds k_document_timeout{300000};
// Bodies of answers that should carry none or little (201 Created, 202 Accepted).
inline constexpr size_t k_small_response_limit = 64 << 10;

}  // namespace kiln
