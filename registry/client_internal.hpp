#pragma once
// Pieces of RegistryClient shared by client.cpp, manifests.cpp and blobs.cpp; not part of the library's interface.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/log.hpp"
#include "common/strings.hpp"
#include "registry/client.hpp"

namespace kiln {

// One registry operation: what the error messages call it, the repository it touches and the access it needs.
struct RegistryClient::Call {
    std::string what;  // "GET manifest library/busybox:latest from docker.io"
    const Reference& repository;
    RepositoryAccess access;
    // Another scope the token must cover ("repository:base/image:pull" to mount a blob from it).
    std::string extra_scope;
};

// A request body: bytes in memory can be sent again (after a 401), a stream only once.
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

// The shortest wait before a retry, however many retries share the window.
inline constexpr std::chrono::milliseconds k_shortest_retry_delay{100};
// How often a wait before a retry looks at the policy's stop.
inline constexpr std::chrono::milliseconds k_stop_check_interval{100};

// The wait before try `next_attempt` (2 for the first retry): its share of the policy's window, jittered, at
// least what the registry asked for.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int next_attempt, std::chrono::milliseconds asked);

// Waits `delay`, or less when the policy's stop is set meanwhile; false when it was.
bool wait_for_retry(const RetryPolicy& policy, std::chrono::milliseconds delay);

// Runs `attempt(n)` for n = 1, 2, … until it succeeds, fails in a way a retry cannot help, or the policy's
// attempts are spent; each retry is logged as a warning with the error that caused it. The final error says how
// many tries were made.
template <class Attempt>
auto with_retries(const RetryPolicy& policy, Attempt&& attempt) -> decltype(attempt(1)) {
    for (int n = 1;; ++n) {
        auto result = attempt(n);
        if (result || !result.error().retryable()) return result;
        if (n >= policy.attempts) {
            if (n == 1) return result;
            Error& error = result.error();
            return std::unexpected(Error(str_cat(error.message(), " (gave up after ", n, " tries)"))
                                       .set_retryable(true)
                                       .set_exit_code(error.exit_code()));
        }
        if (policy.stop && *policy.stop) return result;
        std::chrono::milliseconds delay = retry_delay(policy, n + 1, result.error().retry_after());
        log_warn(result.error().message(), "; try ", n + 1, " of ", policy.attempts, " in ",
                 format_seconds(std::chrono::duration<double>(delay).count()), " s");
        if (!wait_for_retry(policy, delay)) return result;
    }
}

}  // namespace kiln
