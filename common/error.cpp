#include "common/error.hpp"

#include <cstring>

namespace kiln {

Error Error::from_errno(std::string_view what, int err) {
    Error error(std::string(what) + ": " + std::strerror(err));
    error.m_errno = err;
    // Interrupted or resource-starved calls may succeed later; everything else is a property of the input.
    error.m_retryable = err == EINTR || err == EAGAIN;
    return error;
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
