#include "common/error.hpp"

#include <cstring>

#include "common/strings.hpp"

namespace kiln {

Error Error::from_errno(std::string_view what, int err) {
    Error error(std::string(what) + ": " + std::strerror(err));
    error.m_errno = err;
    // Interrupted or resource-starved calls may succeed later; everything else is a property of the input.
    error.m_retryable = err == EINTR || err == EAGAIN;
    return error;
}

std::string format_location(const SourceLocation& location) {
    std::string text = str_cat(location.file, ":", location.line);
    if (!location.text.empty()) text += str_cat(": ", location.text);
    return text;
}

Error& Error::at(const SourceLocation& location) & {
    if (!m_location) m_location = location;
    return *this;
}

Error&& Error::at(const SourceLocation& location) && {
    at(location);
    return std::move(*this);
}

std::string Error::message() const {
    if (!m_location) return m_message;
    return str_cat(format_location(*m_location), ": ", m_message);
}

Error& Error::context(std::string_view outer) & {
    m_message.insert(0, std::string(outer) + ": ");
    return *this;
}

Error&& Error::context(std::string_view outer) && {
    context(outer);
    return std::move(*this);
}

}  // namespace kiln
