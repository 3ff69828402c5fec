// listeners[].routes (SPEC §8): each route's match (model globs, path
// prefix), upstream, rewrite_model and api_keys, and the warning for a route
// an earlier one shadows completely. Route upstreams are linked in load.cpp
// with the listeners' own, once the upstreams are read.

#include <algorithm>

#include "deepseek_gateway/config/routes.hpp"
#include "sections.hpp"

namespace dsgw::config {

namespace {

using yaml::Node;

constexpr std::size_t kMaxGlobBytes = 256;

// One glob of match.model; false after saying why not.
bool read_glob(const Node& n, std::vector<std::string>& globs) {
    auto s = n.as_string();
    if (!s) return false;
    if (s->empty()) {
        n.error("must not be empty");
        return false;
    }
    if (s->size() > kMaxGlobBytes) {
        n.error("must be at most " + std::to_string(kMaxGlobBytes) + " bytes (got " +
                std::to_string(s->size()) + ")");
        return false;
    }
    if (s->find('\0') != std::string::npos) {
        n.error("must not contain a NUL character");
        return false;
    }
    std::size_t backslashes = 0;
    while (backslashes < s->size() && (*s)[s->size() - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) {
        // fnmatch never matches a glob whose last '\' escapes nothing.
        n.error(
            "ends with a lone '\\', so it matches nothing; write '\\\\' for a backslash (got \"" +
            *s + "\")");
        return false;
    }
    globs.push_back(std::move(*s));
    return true;
}

bool read_models(const Node& n, std::vector<std::string>& globs) {
    if (n.is_scalar()) return read_glob(n, globs);
    if (!n.raw().IsSequence()) {
        n.error("expected a glob or a list of globs (got " + n.describe() + ")");
        return false;
    }
    auto items = n.as_list();
    if (items->empty()) {
        n.error("must list at least one glob");
        return false;
    }
    bool ok = true;
    for (const auto& item : *items) ok = read_glob(item, globs) && ok;
    return ok;
}

bool read_path(const Node& n, std::string& path) {
    auto s = n.as_string();
    if (!s) return false;
    if (!s->starts_with('/')) {
        n.error("must start with \"/\" (got \"" + *s + "\")");
        return false;
    }
    if (s->find('?') != std::string::npos) {
        n.error("must not contain \"?\": the path is matched without its query (got \"" + *s +
                "\")");
        return false;
    }
    path = std::move(*s);
    return true;
}

// match: {model, path}. True when it was read without a mistake.
bool read_match(const Node& n, RouteConfig& r) {
    auto m = n.as_map();
    if (!m) return false;
    bool ok = true;
    auto model = m->get("model");
    if (model) ok = read_models(*model, r.models) && ok;
    auto path = m->get("path");
    if (path) ok = read_path(*path, r.path) && ok;
    if (!model && !path) {
        n.error("needs model, path or both");
        ok = false;
    }
    m->finish();
    return ok;
}

// Route names label metrics and the access log next to "default" (the
// listener's upstream) and "none" (no route matched). False after saying why
// not.
bool check_route_name(const Node& n, const std::string& name) {
    if (name.empty()) {
        n.error("must not be empty");
    } else if (!plain_name(name)) {
        n.error("must be 1-64 letters, digits, '_', '-' or '.' (got \"" + name + "\")");
    } else if (name == "default") {
        n.error("\"default\" is reserved: it labels requests sent to the listener's upstream");
    } else if (name == "none") {
        n.error("\"none\" is reserved: it labels requests that no route matched");
    } else {
        return true;
    }
    return false;
}

void read_api_keys(const Node& n, const AuthConfig* auth, RouteConfig& r) {
    auto items = n.as_list();
    if (!items) return;
    if (items->empty()) {
        n.error(
            "must list at least one key name; leave api_keys out to let every client use "
            "this route");
        return;
    }
    if (auth == nullptr) {
        n.error("needs auth on the listener: these are names from its api_keys_file");
        return;
    }
    std::vector<std::string> names;  // in the keys file, once each
    if (auth->keys)
        for (const auto& k : auth->keys->keys())
            if (std::find(names.begin(), names.end(), k.name) == names.end())
                names.push_back(k.name);
    for (const auto& item : *items) {
        auto name = item.as_string();
        if (!name) continue;
        // A keys file that could not be read was reported already.
        if (auth->keys && std::find(names.begin(), names.end(), *name) == names.end()) {
            std::string reason = "no key named \"" + *name + "\" in " + auth->api_keys_file;
            if (auto m = yaml::closest_match(*name, names))
                reason += " (did you mean \"" + *m + "\"?)";
            item.error(reason);
        }
        r.api_keys.push_back(std::move(*name));
    }
}

struct ReadRoute {
    bool match_ok = false;  // the route's match can be compared with others'
    bool name_given = false;
    bool name_ok = false;  // the name can be compared with others'
};

ReadRoute read_route(const Node& n, std::size_t index, const AuthConfig* auth, RouteConfig& r,
                     std::optional<Node>& upstream) {
    ReadRoute out;
    auto m = n.as_map();
    if (!m) return out;
    if (auto name = m->get("name")) {
        out.name_given = true;
        if (auto s = name->as_string()) {
            out.name_ok = check_route_name(*name, *s);
            r.name = std::move(*s);
        }
    } else {
        r.name = "route-" + std::to_string(index + 1);
        out.name_ok = true;
    }
    if (auto match = m->require("match")) out.match_ok = read_match(*match, r);
    if (auto u = m->require("upstream"))
        if (auto name = u->as_string()) {
            r.upstream = std::move(*name);
            upstream = u;
        }
    if (auto rw = m->get("rewrite_model"))
        if (auto s = rw->as_string()) {
            if (s->empty())
                rw->error("must not be empty; leave rewrite_model out to send the client's name");
            else
                r.rewrite_model = std::move(*s);
        }
    if (auto k = m->get("api_keys")) read_api_keys(*k, auth, r);
    m->finish();
    return out;
}

void check_unique_route_names(const Node& n, const std::vector<RouteConfig>& routes,
                              const std::vector<ReadRoute>& read) {
    for (std::size_t j = 0; j < routes.size(); ++j) {
        if (!read[j].name_ok) continue;
        for (std::size_t i = 0; i < j; ++i) {
            if (!read[i].name_ok || routes[i].name != routes[j].name) continue;
            const std::string other = n.path() + "[" + std::to_string(i) + "]";
            const std::string here = n.path() + "[" + std::to_string(j) + "].name";
            if (read[j].name_given)
                n.diagnostics().error(
                    here, "duplicate name \"" + routes[j].name + "\" (also " + other + ")");
            else
                n.diagnostics().error(here, "the default name \"" + routes[j].name +
                                                "\" is taken by " + other +
                                                "; give this route a name");
            break;
        }
    }
}

void warn_shadowed(const Node& n, const std::vector<RouteConfig>& routes,
                   const std::vector<ReadRoute>& read) {
    for (std::size_t j = 0; j < routes.size(); ++j) {
        if (!read[j].match_ok) continue;
        for (std::size_t i = 0; i < j; ++i) {
            if (!read[i].match_ok || !route_shadows(routes[i], routes[j])) continue;
            n.diagnostics().warning(n.path() + "[" + std::to_string(j) + "]",
                                    "route \"" + routes[j].name +
                                        "\" is never used: every request it matches is "
                                        "matched first by " +
                                        n.path() + "[" + std::to_string(i) + "] (\"" +
                                        routes[i].name + "\")");
            break;
        }
    }
}

}  // namespace

void read_routes(const Node& n, const AuthConfig* auth, std::vector<RouteConfig>& routes,
                 std::vector<std::optional<Node>>& upstreams) {
    auto items = n.as_list();
    if (!items) return;
    std::vector<ReadRoute> read;
    for (std::size_t i = 0; i < items->size(); ++i) {
        routes.emplace_back();
        upstreams.emplace_back();
        read.push_back(read_route((*items)[i], i, auth, routes.back(), upstreams.back()));
    }
    check_unique_route_names(n, routes, read);
    warn_shadowed(n, routes, read);
}

}  // namespace dsgw::config
