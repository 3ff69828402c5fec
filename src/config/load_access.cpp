// listeners[].access.trusted_proxies / proxy_protocol and listeners[].auth.
// The API keys file is read and checked here, at load, so --check-config
// reports its mistakes and every reload re-reads it.

#include "sections.hpp"

namespace dsgw::config {

using yaml::Map;
using yaml::Node;

void read_trusted_proxies(Map& access, AccessConfig& a) {
    auto tp = access.get("trusted_proxies");
    if (tp) {
        if (auto items = tp->as_list()) {
            for (const auto& item : *items) {
                auto text = item.as_string();
                if (!text) continue;
                if (auto why = a.trusted_proxies.add(*text)) item.error(*why);
            }
        }
    }
    auto pp = access.get("proxy_protocol");
    if (!pp) return;
    auto on = pp->as_bool();
    if (!on) return;
    a.proxy_protocol = *on;
    // An entry that failed to parse was reported already; only an absent or
    // empty list is this key's mistake.
    const bool listed = tp && tp->raw().IsSequence() && tp->raw().size() > 0;
    if (a.proxy_protocol && !listed)
        pp->error(
            "needs trusted_proxies (the load balancers allowed to send the PROXY header; a "
            "connection from any other peer is closed)");
}

void read_auth(const Node& n, AuthConfig& auth) {
    auto m = n.as_map();
    if (!m) return;
    m->read("forward", auth.forward);
    if (auto f = m->require("api_keys_file")) {
        if (auto path = f->as_string()) {
            if (path->empty()) {
                f->error("must not be empty");
            } else {
                auth.api_keys_file = *path;
                auto loaded = access::load_api_keys_file(*path);
                for (const auto& e : loaded.errors) f->error(e);
                for (const auto& w : loaded.warnings) f->warning(w);
                auth.keys = std::move(loaded.keys);
            }
        }
    }
    m->finish();
}

}  // namespace dsgw::config
