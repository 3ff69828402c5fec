#pragma once
// Throwaway certificates for the TLS tests, made by the `openssl` command line
// into a temporary directory that is removed with the object. Nothing secret
// is committed, and every run gets fresh keys.
//
// What TestPki makes (all keys ECDSA P-256 unless noted; serials fixed so
// tests can tell which certificate a server presented):
//
//   ca            "dsgw test CA", signs everything below except wrong_server
//   wrong_ca      "dsgw wrong CA", unrelated to ca
//   server        CN=localhost, SAN DNS:localhost + IP:127.0.0.1, 30 days, serial 1001
//   server_renewed  the same names and key type, another key, serial 1002 (a renewal)
//   other         CN=other.test, SAN DNS:other.test, RSA 2048, serial 1003 (for SNI)
//   client        CN=dsgw test client, clientAuth, serial 1004
//   wrong_server  CN=localhost + 127.0.0.1 signed by wrong_ca, serial 1005
//   expiring      localhost + 127.0.0.1, expires in 5 days, serial 1006
//   expired       localhost + 127.0.0.1, valid 2019-01-01 .. 2020-01-01, serial 2001
//                 (made with `openssl ca -startdate/-enddate`: Debian 12's
//                 OpenSSL 3.0 `x509` has no -not_after)
//   stray_key     a private key that belongs to none of these certificates
//
// Serial numbers are written as OpenSSL prints them (`serial=1001`, upper-case
// hex without 0x): see Cert::serial.

#include <optional>
#include <string>
#include <vector>

#include "harness.hpp"

namespace dsgw::it {

struct Cert {
    std::string cert;     // PEM certificate file
    std::string key;      // PEM private key file
    std::string serial;   // hex, as `openssl x509 -serial` prints it: "1001"
    std::string subject;  // RFC 2253, e.g. "CN=localhost"
};

class TestPki {
public:
    // Generates everything; check ok() (error() says which command failed).
    TestPki();
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    const std::string& dir() const { return dir_.path(); }

    std::string ca;  // CA certificate (PEM) that signed the certificates below
    std::string ca_key;
    std::string wrong_ca;  // an unrelated CA certificate
    Cert server, server_renewed, other, client, wrong_server, expiring, expired;
    std::string stray_key;

    // Issues one more certificate signed by `ca`: CN=cn, SANs from `dns` and
    // `ips`, valid `days` from now, with `serial` (hex). Returns nothing on
    // failure (error() says why).
    std::optional<Cert> issue(const std::string& name, const std::string& cn,
                              const std::vector<std::string>& dns,
                              const std::vector<std::string>& ips, int days,
                              const std::string& serial, bool client_auth = false);

    // Copies a file into the directory under `name` (for certificates swapped
    // on disk); returns the new path.
    std::string copy(const std::string& from, const std::string& name) const;

    // Runs `openssl ARGS...`; on failure records the command and its stderr.
    bool openssl(const std::vector<std::string>& args);

    // A file's whole content ("" if unreadable).
    static std::string read(const std::string& path);

private:
    bool make_ca(const std::string& name, const std::string& cn, std::string& cert,
                 std::string& key);
    bool new_key(const std::string& path, bool rsa = false);
    std::optional<Cert> issue_with(const std::string& name, const std::string& cn,
                                   const std::vector<std::string>& dns,
                                   const std::vector<std::string>& ips, int days,
                                   const std::string& serial, bool client_auth, bool rsa);
    std::string write_ext(const std::string& name, const std::vector<std::string>& dns,
                          const std::vector<std::string>& ips, bool client_auth);

    TempDir dir_;
    std::string error_;
    std::string cnf_;  // minimal openssl config (req + ca sections)
};

}  // namespace dsgw::it
