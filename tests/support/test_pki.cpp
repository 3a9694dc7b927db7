#include "tests/support/test_pki.hpp"

#include <unistd.h>

#include <vector>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln::test {
namespace {

constexpr const char* k_openssl = "/usr/bin/openssl";
// Long enough for any test run, short enough that a leaked key is worthless.
constexpr const char* k_validity_days = "2";

Status run_openssl(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), k_openssl);
    KILN_ASSIGN(ProcessResult result, run_process(arguments));
    if (result.exit_code != 0)
        return fail(str_cat("openssl ", arguments[1], " exited with status ", result.exit_code, ": ",
                            trim(result.stderr_bytes)));
    return {};
}

// A fresh P-256 key and a certificate request for `subject`.
Status make_request(const std::string& key, const std::string& request, const std::string& subject) {
    return run_openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", request, "-subj", subject});
}

// Signs `request` with the CA; `extensions` is an openssl extension file's body (one `name=value` a line).
Status sign_request(const TestPki& pki, const std::string& request, const std::string& certificate,
                    const std::string& serial, const std::string& extensions) {
    std::string extensions_path = certificate + ".ext";
    KILN_TRY(write_file_atomic(extensions_path, extensions));
    return run_openssl({"x509", "-req", "-in", request, "-CA", pki.ca_certificate, "-CAkey",
                        pki.dir + "/ca.key", "-set_serial", serial, "-days", k_validity_days, "-sha256",
                        "-extfile", extensions_path, "-out", certificate});
}

}  // namespace

std::optional<std::string> TestPki::unavailable_reason() {
    if (::access(k_openssl, X_OK) != 0)
        return str_cat(k_openssl, " is not installed (Debian package openssl)");
    return std::nullopt;
}

Result<TestPki> TestPki::create(const std::string& dir) {
    if (auto reason = unavailable_reason()) return fail(*reason);
    TestPki pki;
    pki.dir = dir;
    pki.ca_certificate = dir + "/ca.pem";
    pki.server_certificate = dir + "/server.pem";
    pki.server_key = dir + "/server.key";
    pki.client_certificate = dir + "/client.pem";
    pki.client_key = dir + "/client.key";

    KILN_TRY_CONTEXT(run_openssl({"req",
                                  "-x509",
                                  "-newkey",
                                  "ec",
                                  "-pkeyopt",
                                  "ec_paramgen_curve:P-256",
                                  "-nodes",
                                  "-keyout",
                                  dir + "/ca.key",
                                  "-out",
                                  pki.ca_certificate,
                                  "-days",
                                  k_validity_days,
                                  "-sha256",
                                  "-subj",
                                  "/CN=kiln test CA",
                                  "-addext",
                                  "basicConstraints=critical,CA:TRUE",
                                  "-addext",
                                  "keyUsage=critical,keyCertSign,cRLSign"}),
                     "making the test CA");

    KILN_TRY_CONTEXT(make_request(pki.server_key, dir + "/server.csr", "/CN=localhost"),
                     "making the server certificate");
    KILN_TRY_CONTEXT(sign_request(pki, dir + "/server.csr", pki.server_certificate, "2",
                                  "basicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\n"
                                  "extendedKeyUsage=serverAuth\n"
                                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
                     "signing the server certificate");

    KILN_TRY_CONTEXT(make_request(pki.client_key, dir + "/client.csr", "/CN=kiln test client"),
                     "making the client certificate");
    KILN_TRY_CONTEXT(sign_request(pki, dir + "/client.csr", pki.client_certificate, "3",
                                  "basicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\n"
                                  "extendedKeyUsage=clientAuth\n"),
                     "signing the client certificate");
    return pki;
}

}  // namespace kiln::test
