#pragma once
// API keys (listeners[].auth): the keys file, and the check of a request's
// `Authorization: Bearer <key>`.
//
// The file is a YAML list of {name, sha256}: the SHA-256 (64 hex digits) of
// each key, never the key itself, as `deepseek-gateway hash-key` prints it:
//
//   - name: team-a
//     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// Names label the access log; two entries may share a name (the old and the
// new key of a team during a rotation), but not a hash. A presented key is
// hashed and compared with every entry using CRYPTO_memcmp, always all of
// them, so neither the time taken nor the order of the file tells an
// attacker anything about the keys.

#include "deepseek_gateway/access/policy.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsgw::access {

using Sha256 = std::array<std::uint8_t, 32>;

Sha256 sha256(std::string_view data);
std::string to_hex(const Sha256& digest);  // 64 lower-case hex digits

struct ApiKey {
    std::string name;
    Sha256 sha256{};
};

class ApiKeys {
public:
    ApiKeys() = default;
    explicit ApiKeys(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

    // The name of the entry whose hash is SHA-256(key), or nothing. The view
    // points into this object: valid while it lives (the Config owns it).
    std::optional<std::string_view> verify(std::string_view key) const;

    const std::vector<ApiKey>& keys() const { return keys_; }
    std::size_t size() const { return keys_.size(); }
    bool empty() const { return keys_.empty(); }

private:
    std::vector<ApiKey> keys_;
};

struct ApiKeysLoad {
    std::shared_ptr<const ApiKeys> keys;  // null when errors is not empty
    // "FILE:LINE: reason" (or "FILE: reason"). A value that may be a secret
    // (a key pasted where its hash belongs) is never quoted.
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};

// Reads and checks a keys file. An empty list is valid (with a warning): it
// refuses every request, which is how all keys are revoked at once.
ApiKeysLoad load_api_keys_file(const std::string& path);
// The same from text; `source` names it in messages.
ApiKeysLoad parse_api_keys(std::string_view yaml, const std::string& source);

// --- Authorization -------------------------------------------------------------

enum class AuthOutcome {
    ok,           // a known key; AuthResult::name says whose
    missing_key,  // no Authorization, another scheme, or "Bearer" with no key
    bad_key,      // a Bearer key that is unknown or malformed, or several Authorization headers
};

struct AuthResult {
    AuthOutcome outcome = AuthOutcome::missing_key;
    std::string_view name;  // ok only; points into the ApiKeys
};

// The key of one Authorization value written as RFC 6750 §2.1 credentials:
// the scheme "Bearer" in any case, one or more spaces (the RFC's 1*SP), then
// the key: visible ASCII without spaces. Leading and trailing spaces and tabs
// around the whole value are ignored. Nothing for any other shape.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// `authorization_values`: the value of each Authorization header of the
// request, in order (usually none or one).
AuthResult authenticate(const ApiKeys& keys,
                        std::span<const std::string_view> authorization_values);

// missing_key or bad_key; `o` must not be ok.
DenyReason to_deny_reason(AuthOutcome o);

// The WWW-Authenticate value for a 401 (RFC 6750 §3): with
// error="invalid_token" for bad_key, without an error for missing_key.
const char* www_authenticate(AuthOutcome o);

}  // namespace dsgw::access
