#pragma once
// A throwaway certificate authority for TLS tests, made with the `openssl` command: a CA, a server
// certificate for 127.0.0.1 and localhost, and a client certificate for mTLS, all signed by that CA. EC P-256
// keys, so that making one takes a fraction of a second. The caller owns the directory (a TempDir) and its
// lifetime.

#include <optional>
#include <string>

#include "common/error.hpp"

namespace kiln::test {

struct TestPki {
    // Where the files are; every path below is inside it. PEM throughout, keys unencrypted (PKCS#8).
    std::string dir;
    std::string ca_certificate;
    // subjectAltName IP:127.0.0.1 and DNS:localhost, extendedKeyUsage serverAuth.
    std::string server_certificate;
    std::string server_key;
    // extendedKeyUsage clientAuth, CN "kiln test client".
    std::string client_certificate;
    std::string client_key;

    // Why no PKI can be made here ("/usr/bin/openssl is not installed"), or nullopt. Tests GTEST_SKIP() on
    // it.
    static std::optional<std::string> unavailable_reason();

    // Writes the CA, server and client files into `dir` (which must exist). The error carries openssl's
    // stderr.
    static Result<TestPki> create(const std::string& dir);
};

}  // namespace kiln::test
