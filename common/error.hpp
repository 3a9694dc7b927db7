#pragma once
// Recoverable failures: a message that gains context on the way up, whether a retry may help, and the
// process exit code the CLI should use when the failure ends the build.

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kiln {

// Where in a Dockerfile (or another located text) a failure arose.
struct SourceLocation {
    std::string file;
    size_t line = 0;   // 1-based
    std::string text;  // the instruction as written; empty when there is none to quote
};

// "Dockerfile:12: COPY a b", or "Dockerfile:12" without text: the one way kiln writes a location.
std::string format_location(const SourceLocation& location);

class Error {
public:
    explicit Error(std::string message) : m_message(std::move(message)) {}

    // "what: strerror(err)". Name the syscall and the path in `what`.
    static Error from_errno(std::string_view what, int err);

    // Prepends the outer step: "pulling sha256:ab…: connection refused".
    Error& context(std::string_view outer) &;
    Error&& context(std::string_view outer) &&;

    // Records where the failure arose. The innermost location wins: one set already is kept.
    Error& at(const SourceLocation& location) &;
    Error&& at(const SourceLocation& location) &&;
    const std::optional<SourceLocation>& location() const { return m_location; }

    // The whole message: the location first when there is one, then the outer steps, then the cause.
    std::string message() const;

    // True when the same operation may succeed if tried again (a timeout, a 503); decided where the failure is
    // understood, never by parsing messages.
    bool retryable() const { return m_retryable; }
    Error& set_retryable(bool retryable = true) & {
        m_retryable = retryable;
        return *this;
    }
    Error&& set_retryable(bool retryable = true) && {
        m_retryable = retryable;
        return std::move(*this);
    }

    // How long the other side asked us to wait before trying again (an HTTP Retry-After); zero when it did not say.
    std::chrono::milliseconds retry_after() const { return m_retry_after; }
    Error& set_retry_after(std::chrono::milliseconds delay) & {
        m_retry_after = delay;
        return *this;
    }
    Error&& set_retry_after(std::chrono::milliseconds delay) && {
        m_retry_after = delay;
        return std::move(*this);
    }
    // The errno behind a failed syscall, 0 otherwise.
    int errno_value() const { return m_errno; }

    // Exit status for the CLI when this error ends the build (a failed RUN passes its own code through).
    int exit_code() const { return m_exit_code; }
    Error& set_exit_code(int code) & {
        m_exit_code = code;
        return *this;
    }
    Error&& set_exit_code(int code) && {
        m_exit_code = code;
        return std::move(*this);
    }

private:
    std::string m_message;
    std::optional<SourceLocation> m_location;
    bool m_retryable = false;
    std::chrono::milliseconds m_retry_after{0};
    int m_errno = 0;
    int m_exit_code = 1;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(std::string message) { return std::unexpected(Error(std::move(message))); }
inline std::unexpected<Error> fail(Error error) { return std::unexpected(std::move(error)); }
// Captures errno at the call: use right after the failing syscall.
inline std::unexpected<Error> fail_errno(std::string_view what, int err = errno) {
    return std::unexpected(Error::from_errno(what, err));
}

// An error located at `location`: "Dockerfile:12: COPY a b: <message>".
inline std::unexpected<Error> fail_at(const SourceLocation& location, std::string message) {
    return std::unexpected(Error(std::move(message)).at(location));
}

// Adds `outer` to a failed result; a success passes through untouched.
template <class T>
std::expected<T, Error> with_context(std::expected<T, Error>&& result, std::string_view outer) {
    if (!result) result.error().context(outer);
    return std::move(result);
}

// Locates a failed result at `location` (see Error::at); a success passes through untouched.
template <class T>
std::expected<T, Error> with_location(std::expected<T, Error>&& result, const SourceLocation& location) {
    if (!result) result.error().at(location);
    return std::move(result);
}

}  // namespace kiln

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Status or Result) from the enclosing function.
#define KILN_TRY(expr)                                                                 \
    do {                                                                               \
        if (auto kiln_try_result_ = (expr); !kiln_try_result_)                         \
            return std::unexpected(std::move(kiln_try_result_).error());               \
    } while (0)

// As KILN_TRY, adding context (evaluated only on failure) to the error first.
#define KILN_TRY_CONTEXT(expr, outer)                                                  \
    do {                                                                               \
        if (auto kiln_try_result_ = (expr); !kiln_try_result_)                         \
            return std::unexpected(std::move(kiln_try_result_.error()).context(outer)); \
    } while (0)

// `KILN_ASSIGN(auto value, compute());` declares `value` from a Result, or returns its error.
#define KILN_ASSIGN(decl, expr) KILN_ASSIGN_IMPL_(KILN_CONCAT_(kiln_assign_result_, __LINE__), decl, expr)
#define KILN_ASSIGN_IMPL_(tmp, decl, expr)                                             \
    auto tmp = (expr);                                                                 \
    if (!tmp) return std::unexpected(std::move(tmp).error());                          \
    decl = std::move(*tmp)
