#pragma once
// Readers of config sections that live outside load.cpp, each in its own
// file so that load.cpp stays the schema's table of contents.

#include "yaml_reader.hpp"

namespace dsgw::config {

// listeners[].tls and upstreams[].tls (load_tls.cpp). Certificate and key
// files are read and checked here, so --check-config reports them.
void read_listener_tls(const yaml::Node& n, ListenerTlsConfig& t);
void read_upstream_tls(const yaml::Node& n, UpstreamTlsConfig& t);

// upstreams[]: max_in_flight, queue, passive, health_check, slow_start
// (load_admission.cpp). Marks those keys as known in `upstream`; read after
// `balancer` (slow_start depends on it).
void read_admission(yaml::Map& upstream, UpstreamConfig& u);

// upstreams[]: prefix_affinity (only with balancer: prefix_affinity) and
// load_metrics (load_balancing.cpp). Read after `balancer`.
void read_balancing(yaml::Map& upstream, UpstreamConfig& u);

// listeners[].access.trusted_proxies and .proxy_protocol (load_access.cpp),
// read from the listener's `access` mapping. proxy_protocol: true needs a
// non-empty trusted_proxies.
void read_trusted_proxies(yaml::Map& access, AccessConfig& a);
// listeners[].auth (load_access.cpp): api_keys_file is read and checked
// now; its errors read "listeners[0].auth.api_keys_file: FILE:LINE: reason".
void read_auth(const yaml::Node& n, AuthConfig& auth);

// listeners[].routes (load_routes.cpp), read after the listener's auth:
// `auth` is null when the listener has no auth section (a route's api_keys
// are then an error); when its keys file could not be read, key names are not
// checked. Each route's `upstream` node (nothing when it is not a string) is
// appended to `upstreams`, to be linked once the upstreams are known. Warns
// about a route that an earlier one shadows completely.
void read_routes(const yaml::Node& n, const AuthConfig* auth, std::vector<RouteConfig>& routes,
                 std::vector<std::optional<yaml::Node>>& upstreams);

// Names in logs and metric labels: 1-64 letters, digits, '_', '-' or '.'
// (load.cpp).
bool plain_name(std::string_view name);

}  // namespace dsgw::config
