#include "registry/api_error.hpp"

#include <curl/curl.h>

#include <ctime>

#include <nlohmann/json.hpp>

#include "common/strings.hpp"

namespace kiln {
namespace {

constexpr size_t k_max_field = 200;
constexpr size_t k_max_errors = 3;

std::string string_field(const nlohmann::json& object, const char* name) {
    auto found = object.find(name);
    if (found == object.end() || !found->is_string()) return "";
    return printable_excerpt(found->get<std::string>(), k_max_field);
}

}  // namespace

std::string summarize_error_body(std::string_view body) {
    nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return "";
    std::vector<std::string> parts;
    if (auto errors = json.find("errors"); errors != json.end() && errors->is_array()) {
        for (const auto& entry : *errors) {
            if (parts.size() == k_max_errors) break;
            if (!entry.is_object()) continue;
            std::string code = string_field(entry, "code");
            std::string message = string_field(entry, "message");
            if (code.empty() && message.empty()) continue;
            parts.push_back(code.empty() ? message : message.empty() ? code : str_cat(code, ": ", message));
        }
    }
    if (parts.empty()) {
        std::string details = string_field(json, "details");
        if (details.empty()) details = string_field(json, "error");
        if (!details.empty()) parts.push_back(details);
    }
    return join(parts, "; ");
}

bool is_retryable_status(long status) {
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::chrono::milliseconds retry_after(const HttpResponse& response) {
    std::optional<std::string> header = response.headers.get("Retry-After");
    if (!header) return std::chrono::milliseconds(0);
    std::string value(trim(*header));
    std::uint64_t seconds = 0;
    if (parse_uint64(value, seconds)) return std::chrono::seconds(std::min<std::uint64_t>(seconds, 24 * 3600));
    time_t when = curl_getdate(value.c_str(), nullptr);
    time_t now = std::time(nullptr);
    if (when == -1 || when <= now) return std::chrono::milliseconds(0);
    return std::chrono::seconds(std::min<time_t>(when - now, 24 * 3600));
}

Error http_status_error(std::string_view what, const HttpResponse& response) {
    std::string summary = summarize_error_body(response.body);
    std::string message = str_cat(what, ": HTTP ", response.status);
    if (!summary.empty()) message += str_cat(" ", summary);
    return Error(std::move(message))
        .set_retryable(is_retryable_status(response.status))
        .set_retry_after(retry_after(response));
}

}  // namespace kiln
