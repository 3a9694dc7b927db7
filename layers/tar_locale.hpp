#pragma once
// libarchive converts entry names through the locale of the calling thread. Pinning that thread to C.UTF-8
// while libarchive runs makes tar bytes independent of the process's LANG without touching global state:
// UTF-8 names are stored as standard PAX "path" records, and only names that are not UTF-8 are marked
// hdrcharset=BINARY and kept as raw bytes.

#include <locale.h>

namespace kiln {

// An owned C.UTF-8 locale object (null where the C library has none; then the thread's locale is used).
class Utf8Locale {
public:
    Utf8Locale() : m_locale(::newlocale(LC_ALL_MASK, "C.UTF-8", static_cast<locale_t>(nullptr))) {}
    ~Utf8Locale() {
        if (m_locale) ::freelocale(m_locale);
    }
    Utf8Locale(const Utf8Locale&) = delete;
    Utf8Locale& operator=(const Utf8Locale&) = delete;
    locale_t get() const { return m_locale; }

private:
    locale_t m_locale;
};

// Switches the calling thread to `locale` for the guard's lifetime.
class ThreadLocaleGuard {
public:
    explicit ThreadLocaleGuard(const Utf8Locale& locale)
        : m_previous(locale.get() ? ::uselocale(locale.get()) : static_cast<locale_t>(nullptr)) {}
    ~ThreadLocaleGuard() {
        if (m_previous) ::uselocale(m_previous);
    }
    ThreadLocaleGuard(const ThreadLocaleGuard&) = delete;
    ThreadLocaleGuard& operator=(const ThreadLocaleGuard&) = delete;

private:
    locale_t m_previous;
};

}  // namespace kiln
