#pragma once
// Turning a registry's (or token server's) non-2xx answer into an Error that names what was being done, the HTTP
// status and the registry's own error JSON, marked retryable when trying again may help.

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "registry/http.hpp"

namespace kiln {

// "MANIFEST_UNKNOWN: manifest unknown" from an error body ({"errors":[{"code","message"}]} or a token server's
// {"details"}), sanitized and shortened; empty when the body says nothing usable.
std::string summarize_error_body(std::string_view body);

// How long a 429 or 503 asks the client to wait (Retry-After: seconds or an HTTP date); zero when unsaid.
std::chrono::milliseconds retry_after(const HttpResponse& response);

// "<what>: HTTP 404 MANIFEST_UNKNOWN: manifest unknown". Retryable for 408, 429, 500, 502, 503 and 504, carrying Retry-After.
Error http_status_error(std::string_view what, const HttpResponse& response);

// True for statuses that may succeed when the same request is sent again.
bool is_retryable_status(long status);

}  // namespace kiln
