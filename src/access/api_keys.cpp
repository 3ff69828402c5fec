#include "deepseek_gateway/access/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace dsgw::access {

namespace {

constexpr std::size_t kMaxFileBytes = 1024 * 1024;

const EVP_MD* sha256_md() {
    // Fetched once: an implicit fetch on every digest costs a lookup each time.
    static EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched ? fetched : EVP_sha256();
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<Sha256> parse_hex(std::string_view s) {
    if (s.size() != 64) return std::nullopt;
    Sha256 out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

bool plain_name(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.';
    });
}

// Collects messages as "SOURCE:LINE: reason".
struct Messages {
    const std::string& source;
    ApiKeysLoad& out;

    std::string at(const YAML::Node& n) const {
        if (n.Mark().is_null()) return source;
        return source + ":" + std::to_string(n.Mark().line + 1);
    }
    void error(const YAML::Node& n, const std::string& why) {
        out.errors.push_back(at(n) + ": " + why);
    }
    void warning(const YAML::Node& n, const std::string& why) {
        out.warnings.push_back(at(n) + ": " + why);
    }
};

std::string describe(const YAML::Node& n) {
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    if (!n.IsDefined() || n.IsNull()) return "nothing";
    return "a value";  // scalars are not quoted: they might be secrets
}

// One {name, sha256} entry; `keys` holds the entries read so far and
// `lines` the line of each.
void read_entry(const YAML::Node& item, Messages& m, std::vector<ApiKey>& keys,
                std::vector<int>& lines) {
    if (!item.IsMap()) {
        m.error(item, "expected an entry {name: NAME, sha256: HEX} (got " + describe(item) + ")");
        return;
    }
    std::optional<std::string> name;
    std::optional<Sha256> digest;
    bool has_name = false, has_hash = false, ok = true;
    for (const auto& kv : item) {
        const auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        const YAML::Node& v = kv.second;
        if ((key == "name" && has_name) || (key == "sha256" && has_hash)) {
            m.error(kv.first, key + ": given twice in one entry");
            ok = false;
        } else if (key == "name") {
            has_name = true;
            if (!v.IsScalar() || v.Scalar().empty()) {
                m.error(v, "name: must be a non-empty string (got " + describe(v) + ")");
                ok = false;
            } else if (!plain_name(v.Scalar())) {
                m.error(v, "name: must be 1-64 letters, digits, '_', '-' or '.' (got \"" +
                               v.Scalar() + "\")");
                ok = false;
            } else {
                name = v.Scalar();
                if (*name == "CHANGE-ME")
                    m.warning(
                        v, "name: still CHANGE-ME, as hash-key printed it; name the key's owner");
            }
        } else if (key == "sha256") {
            has_hash = true;
            if (!v.IsScalar() || !(digest = parse_hex(v.Scalar()))) {
                std::string got =
                    v.IsScalar() ? std::to_string(v.Scalar().size()) + " characters" : describe(v);
                m.error(v,
                        "sha256: must be 64 hexadecimal digits, the SHA-256 of the key as "
                        "`deepseek-gateway hash-key` prints it, never the key itself (got " +
                            got + ")");
                ok = false;
            }
        } else {
            m.error(kv.first, "unknown key \"" + key + "\" (an entry has name and sha256)");
            ok = false;
        }
    }
    if (!has_name) m.error(item, "name: required");
    if (!has_hash) m.error(item, "sha256: required");
    if (!ok || !name || !digest) return;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i].sha256 == *digest) {
            m.error(item, "the same sha256 as the entry on line " + std::to_string(lines[i]) +
                              " (one key, two entries)");
            return;
        }
    }
    keys.push_back(ApiKey{std::move(*name), *digest});
    lines.push_back(item.Mark().line + 1);
}

}  // namespace

Sha256 sha256(std::string_view data) {
    Sha256 out{};
    unsigned int len = 0;
    if (!EVP_Digest(data.data(), data.size(), out.data(), &len, sha256_md(), nullptr) ||
        len != out.size()) {
        // Never a match: an all-zero digest is not a SHA-256 anyone can produce.
        out.fill(0);
    }
    return out;
}

std::string to_hex(const Sha256& digest) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (auto b : digest) {
        out += digits[b >> 4];
        out += digits[b & 0xF];
    }
    return out;
}

std::optional<std::string_view> ApiKeys::verify(std::string_view key) const {
    const Sha256 presented = sha256(key);
    const ApiKey* match = nullptr;
    // Every entry is compared, whatever matched before: the time taken does
    // not depend on where (or whether) the key is in the file.
    for (const auto& k : keys_) {
        const bool same = CRYPTO_memcmp(presented.data(), k.sha256.data(), presented.size()) == 0;
        if (same && match == nullptr) match = &k;
    }
    if (match == nullptr) return std::nullopt;
    return std::string_view(match->name);
}

ApiKeysLoad parse_api_keys(std::string_view text, const std::string& source) {
    ApiKeysLoad out;
    Messages m{source, out};
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::ParserException& e) {
        std::string where = source;
        if (!e.mark.is_null())
            where +=
                ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
        out.errors.push_back(where + ": invalid YAML: " + e.msg);
        return out;
    } catch (const YAML::Exception& e) {
        out.errors.push_back(source + ": invalid YAML: " + e.what());
        return out;
    }
    if (docs.size() > 1) {
        out.errors.push_back(source + ": holds " + std::to_string(docs.size()) +
                             " YAML documents; write the keys as one list");
        return out;
    }
    std::vector<ApiKey> keys;
    std::vector<int> lines;
    const YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
    if (root.IsSequence()) {
        for (const auto& item : root) read_entry(item, m, keys, lines);
    } else if (root.IsDefined() && !root.IsNull()) {
        m.error(root, "expected a list of {name, sha256} entries (got " + describe(root) + ")");
    }
    if (!out.errors.empty()) return out;
    if (keys.empty())
        out.warnings.push_back(source + ": lists no keys; every request will be refused with 401");
    out.keys = std::make_shared<const ApiKeys>(std::move(keys));
    return out;
}

ApiKeysLoad load_api_keys_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ApiKeysLoad out;
        out.errors.push_back("cannot read \"" + path + "\": " + std::strerror(errno));
        return out;
    }
    std::string text;
    char buf[16384];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > kMaxFileBytes) {
            ApiKeysLoad out;
            out.errors.push_back("\"" + path + "\" is larger than 1 MiB; is it the right file?");
            return out;
        }
    }
    if (in.bad()) {
        ApiKeysLoad out;
        out.errors.push_back("cannot read \"" + path + "\": " + std::strerror(errno));
        return out;
    }
    return parse_api_keys(text, path);
}

// --- Authorization -------------------------------------------------------------

std::optional<std::string_view> bearer_token(std::string_view authorization) {
    auto v = trim(authorization);
    constexpr std::string_view scheme = "Bearer";
    if (v.size() <= scheme.size() || !iequals(v.substr(0, scheme.size()), scheme) ||
        v[scheme.size()] != ' ')
        return std::nullopt;
    v.remove_prefix(scheme.size());
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (v.empty()) return std::nullopt;
    if (!std::all_of(v.begin(), v.end(), [](char c) { return c > 0x20 && c < 0x7F; }))
        return std::nullopt;
    return v;
}

AuthResult authenticate(const ApiKeys& keys, std::span<const std::string_view> values) {
    if (values.empty()) return {AuthOutcome::missing_key, {}};
    // Authorization is a singleton field (RFC 9110 §11.6.2): two of them are
    // ambiguous, and which one a next hop would read is not ours to guess.
    if (values.size() > 1) return {AuthOutcome::bad_key, {}};
    const auto v = trim(values.front());
    const auto end = v.find_first_of(" \t");
    // No key: no header value, another scheme (Basic ...), or "Bearer" with
    // nothing after it (what a client with an empty key variable sends).
    if (!iequals(v.substr(0, end), "Bearer")) return {AuthOutcome::missing_key, {}};
    if (end == std::string_view::npos) return {AuthOutcome::missing_key, {}};
    auto token = bearer_token(v);
    if (!token) return {AuthOutcome::bad_key, {}};
    auto name = keys.verify(*token);
    if (!name) return {AuthOutcome::bad_key, {}};
    return {AuthOutcome::ok, *name};
}

DenyReason to_deny_reason(AuthOutcome o) {
    return o == AuthOutcome::missing_key ? DenyReason::missing_key : DenyReason::bad_key;
}

const char* www_authenticate(AuthOutcome o) {
    return o == AuthOutcome::bad_key ? "Bearer realm=\"deepseek-gateway\", error=\"invalid_token\""
                                     : "Bearer realm=\"deepseek-gateway\"";
}

}  // namespace dsgw::access
