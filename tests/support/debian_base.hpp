#pragma once
// A Debian bookworm base image for tests that need Debian's own tools (useradd, su, apt, dpkg): a minbase root
// filesystem made once with debootstrap from the machine's configured Debian mirror, kept as a one-layer OCI
// layout in a cache directory that outlives test runs ($KILN_TEST_CACHE, else /var/cache/kiln-tests). Callers
// in concurrent test processes wait for one another.

#include <string>

#include "common/error.hpp"

namespace kiln::test {

// The mirror apt is configured with: the first URIs of /etc/apt/sources.list.d/debian.sources that is not
// the security archive, else the first "deb" line of /etc/apt/sources.list.
Result<std::string> configured_debian_mirror();

// The OCI layout (tag "bookworm") of the Debian base, made on first use, which takes debootstrap's minutes.
// Fails, for the caller to skip with the message, where debootstrap or root is missing or the mirror cannot
// be reached.
Result<std::string> debian_base_layout();

}  // namespace kiln::test
