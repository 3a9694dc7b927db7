#pragma once
// libarchive converts entry names through the locale of the calling thread. Pinning that thread to C.UTF-8
// while libarchive runs makes tar bytes independent of the process's LANG without touching global state:
// UTF-8 names are stored as standard PAX "path" records, and only names that are not UTF-8 are marked
// hdrcharset=BINARY and kept as raw bytes.

#include <locale.h>

namespace kiln {

// The process's one C.UTF-8 locale object, made on first use and never freed (null where the C library has
// none; then the thread's locale is used). Sharing it spares every tar reader and writer a newlocale() and
// freelocale(), whose work inside the C library is serialized across threads.
inline locale_t utf8_locale() {
    static const locale_t locale = ::newlocale(LC_ALL_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return locale;
}

// Switches the calling thread to C.UTF-8 for the guard's lifetime.
class ThreadLocaleGuard {
public:
    ThreadLocaleGuard() : m_previous(utf8_locale() ? ::uselocale(utf8_locale()) : static_cast<locale_t>(nullptr)) {}
    ~ThreadLocaleGuard() {
        if (m_previous) ::uselocale(m_previous);
    }
    ThreadLocaleGuard(const ThreadLocaleGuard&) = delete;
    ThreadLocaleGuard& operator=(const ThreadLocaleGuard&) = delete;

private:
    locale_t m_previous;
};

}  // namespace kiln
