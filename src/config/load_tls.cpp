// listeners[].tls and upstreams[].tls: the keys, and the files they name,
// checked at load (unreadable, key not matching, expired -> error; expiring
// within 14 days -> warning), each with its key path.

#include "deepseek_gateway/tls/material.hpp"
#include "sections.hpp"

namespace dsgw::config {

namespace {

using yaml::EnumName;
using yaml::Map;
using yaml::Node;

constexpr EnumName<TlsVersion> kTlsVersions[] = {
    {"1.2", TlsVersion::v1_2},
    {"1.3", TlsVersion::v1_3},
};
constexpr EnumName<VerifyClient> kVerifyClient[] = {
    {"required", VerifyClient::required},
    {"optional", VerifyClient::optional},
};

// Reads `certificate` and `private_key` from `m` (both required when
// `required`) and checks the files. Returns false when either is missing.
bool read_pair(Map& m, CertKeyPair& pair, bool required) {
    auto c = required ? m.require("certificate") : m.get("certificate");
    auto k = required ? m.require("private_key") : m.get("private_key");
    if (!c && !k) return false;
    if (!c || !k) {
        if (!required)
            m.node().diagnostics().error(m.child_path(c ? "private_key" : "certificate"),
                                         "required with \"" +
                                             std::string(c ? "certificate" : "private_key") + "\"");
        return false;
    }
    auto cs = c->as_string();
    auto ks = k->as_string();
    if (!cs || !ks) return false;
    pair.certificate = *cs;
    pair.private_key = *ks;
    auto check = tls::check_pair(pair.certificate, pair.private_key);
    for (const auto& e : check.certificate_errors) c->error(e);
    for (const auto& e : check.key_errors) k->error(e);
    for (const auto& w : check.warnings) c->diagnostics().warning(c->path(), w);
    return true;
}

void read_ca(Map& m, std::string_view key, std::string& out) {
    auto n = m.get(key);
    if (!n) return;
    auto s = n->as_string();
    if (!s) return;
    if (auto why = tls::check_ca_file(*s)) n->error(*why);
    out = *s;
}

}  // namespace

void read_listener_tls(const Node& n, ListenerTlsConfig& t) {
    auto m = n.as_map();
    if (!m) return;
    t.enabled = true;
    const bool has_single = m->get("certificate") || m->get("private_key");
    auto list = m->get("certificates");
    if (has_single && list) {
        n.error("give either certificate and private_key, or certificates, not both");
    } else if (list) {
        if (auto items = list->as_list()) {
            if (items->empty()) list->error("must not be empty");
            for (const auto& item : *items) {
                auto im = item.as_map();
                if (!im) continue;
                CertKeyPair pair;
                if (read_pair(*im, pair, true)) t.certificates.push_back(std::move(pair));
                im->finish();
            }
        }
    } else {
        CertKeyPair pair;
        if (!has_single)
            n.diagnostics().error(m->child_path("certificate"),
                                  "required (or a list under \"certificates\")");
        else if (read_pair(*m, pair, true))
            t.certificates.push_back(std::move(pair));
    }
    m->read("min_version", t.min_version, kTlsVersions);
    read_ca(*m, "client_ca", t.client_ca);
    if (auto v = m->get("verify_client")) {
        if (auto e = v->as_enum(kVerifyClient)) t.verify_client = *e;
        if (t.client_ca.empty() && !m->get("client_ca"))
            v->error("needs client_ca (the CA that signs client certificates)");
    }
    m->finish();
}

void read_upstream_tls(const Node& n, UpstreamTlsConfig& t) {
    if (n.raw().IsScalar()) {
        if (auto b = n.as_bool()) t.enabled = *b;
        return;
    }
    auto m = n.as_map();
    if (!m) return;
    t.enabled = true;
    read_ca(*m, "ca", t.ca);
    m->read("server_name", t.server_name);
    m->read("verify", t.verify);
    read_pair(*m, t.client, false);
    m->finish();
}

}  // namespace dsgw::config
