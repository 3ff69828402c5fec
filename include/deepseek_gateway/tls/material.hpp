#pragma once
// Certificate and key files, read and checked without any socket: used by
// --check-config (and every reload) to report unreadable files, keys that do
// not match their certificate, and certificates that have expired or soon
// will, before anything starts using them.

#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace dsgw::tls {

struct PairCheck {
    // "reason" texts, without a key path: about the certificate file, and
    // about the key file (including a key that does not match).
    std::vector<std::string> certificate_errors;
    std::vector<std::string> key_errors;
    std::vector<std::string> warnings;
    bool ok() const { return certificate_errors.empty() && key_errors.empty(); }
    std::time_t not_after = 0;          // of the leaf certificate; 0 if unreadable
    std::vector<std::string> names;     // its DNS and IP subject alternative names
};

// Reads a PEM certificate chain and a PEM private key and checks that they
// belong together. `now` is injectable for tests.
PairCheck check_pair(const std::string& certificate_file, const std::string& key_file,
                     std::time_t now = std::time(nullptr));

// Reads a PEM file of CA certificates; returns an error text or nothing.
std::optional<std::string> check_ca_file(const std::string& file);

// How soon before expiry a certificate draws a warning.
constexpr std::time_t kExpiryWarningSeconds = 14 * 24 * 3600;

}  // namespace dsgw::tls
