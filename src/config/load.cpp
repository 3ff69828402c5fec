// The schema of SPEC §3: YAML text -> Config, with every mistake reported as
// "key.path: reason". Each section has one reader; the checks that span
// sections (names unique, listener -> upstream references) run at the end.
// One file for the whole schema, past the usual ~500 lines, so that it reads
// top to bottom in the order of SPEC §3.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include "deepseek_gateway/config/servers.hpp"
#include "sections.hpp"
#include "yaml_reader.hpp"

namespace dsgw::config {

namespace {

namespace ip = boost::asio::ip;
using yaml::Diagnostics;
using yaml::EnumName;
using yaml::Map;
using yaml::Node;

constexpr EnumName<BalancerKind> kBalancers[] = {
    {"least_conn", BalancerKind::least_conn},
    {"round_robin", BalancerKind::round_robin},
    {"ip_hash", BalancerKind::ip_hash},
    {"prefix_affinity", BalancerKind::prefix_affinity},
};
constexpr EnumName<OnDeny> kOnDeny[] = {
    {"close", OnDeny::close},
    {"respond_403", OnDeny::respond_403},
};
constexpr EnumName<LogLevel> kLogLevels[] = {
    {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},
    {"warn", LogLevel::warn},   {"error", LogLevel::error},
};
constexpr EnumName<LogFormat> kLogFormats[] = {
    {"json", LogFormat::json},
    {"text", LogFormat::text},
};

constexpr unsigned kMaxWorkers = 256;
constexpr std::uint64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

constexpr const char* kAllowHint = "to admit every address, write allow: [\"0.0.0.0/0\", \"::/0\"]";

unsigned auto_workers() {
    return std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
}

// Names appear in logs and metric labels: keep them plain. A name with bad
// characters is still returned, so that references to it do not repeat the
// error.
std::optional<std::string> read_name(Map& m) {
    auto n = m.require("name");
    if (!n) return std::nullopt;
    auto s = n->as_string();
    if (!s) return std::nullopt;
    if (s->empty()) {
        n->error("must not be empty");
        return std::nullopt;
    }
    if (!plain_name(*s))
        n->error("must be 1-64 letters, digits, '_', '-' or '.' (got \"" + *s + "\")");
    return s;
}

// An address in host:port form; the hint covers the classic YAML trap of an
// unquoted "[::1]" turning into a list.
std::optional<HostPort> read_host_port(const Node& n) {
    if (n.raw().IsSequence()) {
        n.error("expected a string (got a list); quote IPv6 addresses, e.g. \"[::1]:8080\"");
        return std::nullopt;
    }
    auto text = n.as_string();
    if (!text) return std::nullopt;
    HostPort hp;
    std::string why;
    if (!parse_host_port(*text, hp, why)) {
        n.error(why);
        return std::nullopt;
    }
    return hp;
}

// --- upstreams ---------------------------------------------------------------

bool read_server_address(const Node& n, ServerConfig& s) {
    auto hp = read_host_port(n);
    if (!hp) return false;
    if (hp->port == 0) {
        n.error("port must be 1-65535 (got \"" + n.raw().Scalar() + "\")");
        return false;
    }
    boost::system::error_code ec;
    auto literal = ip::make_address(hp->host, ec);
    if (!ec) {
        if (literal.is_unspecified()) {
            n.error(
                "an unspecified address cannot be connected to; write the server's own "
                "address (got \"" +
                n.raw().Scalar() + "\")");
            return false;
        }
        s.resolved = {literal};
    } else if (auto why = resolve_host(hp->host, s.resolved)) {
        n.error("cannot resolve \"" + hp->host + "\": " + *why);
        return false;
    } else {
        s.host_name = true;
    }
    s.address = std::move(*hp);
    return true;
}

void read_servers(const Node& n, UpstreamConfig& u) {
    auto items = n.as_list();
    if (!items) return;
    if (items->empty()) {
        n.error("must list at least one server");
        return;
    }
    std::vector<std::string> seen;  // "host:port" of each server, "" when invalid
    for (const auto& item : *items) {
        auto m = item.as_map();
        if (!m) continue;
        ServerConfig s;
        std::string key;
        if (auto a = m->require("address"); a && read_server_address(*a, s)) {
            key = s.address.to_string();
            auto dup = std::find(seen.begin(), seen.end(), key);
            if (dup != seen.end()) {
                // Servers are told apart by address in logs and metric labels.
                a->error("duplicate server (same as " + n.path() + "[" +
                         std::to_string(dup - seen.begin()) + "]); raise its weight instead");
                key.clear();
            }
        }
        seen.push_back(key);
        m->read("weight", s.weight, 1, 1000);
        m->finish();
        u.servers.push_back(std::move(s));
    }
}

void read_timeouts(const Node& n, UpstreamTimeouts& t) {
    auto m = n.as_map();
    if (!m) return;
    m->read_duration("connect", t.connect, false);
    m->read_duration("first_byte", t.first_byte, false);
    m->read_duration("idle", t.idle, false);
    m->finish();
}

// Returns the upstream's name when it could be read.
std::optional<std::string> read_upstream(const Node& n, UpstreamConfig& u) {
    auto m = n.as_map();
    if (!m) return std::nullopt;
    auto name = read_name(*m);
    if (name) u.name = *name;
    m->read("balancer", u.balancer, kBalancers);
    if (auto s = m->require("servers")) read_servers(*s, u);
    m->read("keepalive", u.keepalive, 0, 10000);
    m->read("retries", u.retries, 0, 10);
    if (auto t = m->get("timeouts")) read_timeouts(*t, u.timeouts);

    if (auto t = m->get("tls")) read_upstream_tls(*t, u.tls);
    read_admission(*m, u);
    read_balancing(*m, u);
    m->read_duration("resolve_interval", u.resolve_interval, true);
    m->finish();
    return name;
}

// --- listeners ---------------------------------------------------------------

void read_cidrs(const Node& n, access::CidrSet& set) {
    auto items = n.as_list();
    if (!items) return;
    for (const auto& item : *items) {
        auto text = item.as_string();
        if (!text) continue;
        if (auto why = set.add(*text)) item.error(*why);
    }
}

void read_access(Map& listener, AccessConfig& a) {
    auto n = listener.get("access");
    if (!n) {
        listener.node().diagnostics().error(listener.child_path("access") + ".allow",
                                            std::string("required; ") + kAllowHint);
        return;
    }
    auto m = n->as_map();
    if (!m) return;
    if (auto allow = m->get("allow"); !allow) {
        n->diagnostics().error(m->child_path("allow"), std::string("required; ") + kAllowHint);
    } else if (allow->is_null() || (allow->raw().IsSequence() && allow->raw().size() == 0)) {
        allow->error(std::string("must not be empty; ") + kAllowHint);
    } else {
        read_cidrs(*allow, a.policy.allow);
    }
    if (auto deny = m->get("deny")) read_cidrs(*deny, a.policy.deny);
    m->read("on_deny", a.on_deny, kOnDeny);
    read_trusted_proxies(*m, a);
    m->finish();
}

// What the cross-section checks need to know about one listener.
struct ListenerRefs {
    std::optional<std::string> name;
    bool address_ok = false;
    std::optional<Node> upstream;  // the `upstream` key, when it is a string
    std::vector<std::optional<Node>> route_upstreams;  // each route's, likewise
};

ListenerRefs read_listener(const Node& n, ListenerConfig& l) {
    ListenerRefs refs;
    auto m = n.as_map();
    if (!m) return refs;
    refs.name = read_name(*m);
    if (refs.name) l.name = *refs.name;
    if (auto a = m->require("address")) {
        if (auto hp = read_host_port(*a)) {
            boost::system::error_code ec;
            l.ip = ip::make_address(hp->host, ec);
            if (ec) {
                a->error(
                    "must be an IP address and port such as \"0.0.0.0:8443\" or "
                    "\"[::]:8443\"; host names are not accepted here (got \"" +
                    a->raw().Scalar() + "\")");
            } else {
                l.address = std::move(*hp);
                refs.address_ok = true;
            }
        }
    }
    read_access(*m, l.access);
    // With routes, the default upstream is optional: unmatched requests get 404.
    auto routes = m->get("routes");
    const bool routed = routes && routes->raw().IsSequence() && routes->raw().size() > 0;
    if (auto u = routed ? m->get("upstream") : m->require("upstream"))
        if (auto name = u->as_string()) {
            l.upstream = *name;
            refs.upstream = u;
        }
    if (auto t = m->get("tls")) read_listener_tls(*t, l.tls);
    auto au = m->get("auth");
    if (au) read_auth(*au, l.auth);
    // After auth: a route's api_keys are names from its keys file.
    if (routes) read_routes(*routes, au ? &l.auth : nullptr, l.routes, refs.route_upstreams);
    m->finish();
    return refs;
}

// A required, non-empty list of sections.
std::optional<std::vector<Node>> read_sections(Map& root, std::string_view key,
                                               std::string_view what) {
    auto n = root.require(key);
    if (!n) return std::nullopt;
    auto items = n->as_list();
    if (items && items->empty()) {
        n->error("must list at least one " + std::string(what));
        return std::nullopt;
    }
    return items;
}

// --- the other sections ------------------------------------------------------

void read_workers(Map& root, Config& c) {
    c.workers = auto_workers();
    auto n = root.get("workers");
    if (!n || (n->is_scalar() && n->raw().Scalar() == "auto")) return;
    const auto& s = n->is_scalar() ? n->raw().Scalar() : std::string();
    if (!s.empty() &&
        std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        if (auto v = n->as_unsigned(1, kMaxWorkers)) c.workers = static_cast<unsigned>(*v);
        return;
    }
    n->error("expected \"auto\" or an integer 1-" + std::to_string(kMaxWorkers) + " (got " +
             n->describe() + ")");
}

void read_limits(const Node& n, LimitsConfig& l) {
    auto m = n.as_map();
    if (!m) return;
    m->read_size("max_header_bytes", l.max_header_bytes, kKiB, kMiB);
    m->read_size("max_request_body", l.max_request_body, kKiB, 16 * kGiB);
    m->read_duration("header_timeout", l.header_timeout, false);
    m->read_duration("client_idle", l.client_idle, false);
    m->read("max_connections", l.max_connections, 1, 1'000'000);
    m->finish();
}

void read_logging(const Node& n, LoggingConfig& l) {
    auto m = n.as_map();
    if (!m) return;
    m->read("level", l.level, kLogLevels);
    if (auto a = m->get("access_log"))
        if (auto v = a->as_string()) {
            if (v->empty())
                a->error("must be stdout, off or a file path (got an empty string)");
            else
                l.access_log = *v;
        }
    m->read("format", l.format, kLogFormats);
    m->finish();
}

// admin: {address, access: {allow, deny}}. Absent keys keep the loopback
// defaults of AdminConfig. Returns true when the address could be read.
bool read_admin(const Node& n, AdminConfig& a) {
    auto m = n.as_map();
    if (!m) return false;
    bool address_ok = true;
    if (auto addr = m->get("address")) {
        address_ok = false;
        if (auto hp = read_host_port(*addr)) {
            boost::system::error_code ec;
            auto ip = ip::make_address(hp->host, ec);
            if (ec) {
                addr->error(
                    "must be an IP address and port such as \"127.0.0.1:9100\"; host names are "
                    "not accepted here (got \"" +
                    addr->raw().Scalar() + "\")");
            } else {
                a.address = std::move(*hp);
                a.ip = ip;
                address_ok = true;
            }
        }
    }
    m->read("metrics", a.metrics);
    if (auto acc = m->get("access")) {
        if (auto am = acc->as_map()) {
            if (auto allow = am->get("allow")) {
                if (allow->is_null() || (allow->raw().IsSequence() && allow->raw().size() == 0)) {
                    allow->error("must not be empty; leave allow out for loopback only");
                } else {
                    a.access.allow = access::CidrSet();
                    read_cidrs(*allow, a.access.allow);
                }
            }
            if (auto deny = am->get("deny")) read_cidrs(*deny, a.access.deny);
            am->finish();
        }
    }
    m->finish();
    return address_ok;
}

// --- checks across sections ---------------------------------------------------

void check_unique_names(const std::vector<std::optional<std::string>>& names,
                        std::string_view section, Diagnostics& d) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!names[i]) continue;
        for (std::size_t j = 0; j < i; ++j) {
            if (names[j] == names[i]) {
                d.error(std::string(section) + "[" + std::to_string(i) + "].name",
                        "duplicate name \"" + *names[i] + "\" (also " + std::string(section) + "[" +
                            std::to_string(j) + "])");
                break;
            }
        }
    }
}

void check_listener_addresses(const Config& c, const std::vector<ListenerRefs>& refs,
                              Diagnostics& d) {
    for (std::size_t i = 0; i < c.listeners.size(); ++i) {
        const auto& a = c.listeners[i];
        if (!refs[i].address_ok || a.address.port == 0) continue;  // port 0: any free port
        for (std::size_t j = 0; j < i; ++j) {
            const auto& b = c.listeners[j];
            if (refs[j].address_ok && b.ip == a.ip && b.address.port == a.address.port) {
                d.error("listeners[" + std::to_string(i) + "].address",
                        a.address.to_string() + " is already used by listeners[" +
                            std::to_string(j) + "]");
                break;
            }
        }
    }
}

// The admin listener must not take a proxy listener's address.
void check_admin_address(const Config& c, const std::vector<ListenerRefs>& refs, Diagnostics& d) {
    if (c.admin.address.port == 0) return;
    for (std::size_t i = 0; i < c.listeners.size(); ++i) {
        const auto& l = c.listeners[i];
        if (refs[i].address_ok && l.ip == c.admin.ip && l.address.port == c.admin.address.port) {
            d.error("admin.address", c.admin.address.to_string() +
                                         " is already used by listeners[" + std::to_string(i) +
                                         "]");
            return;
        }
    }
}

void link_upstreams(Config& c, const std::vector<ListenerRefs>& refs,
                    const std::vector<std::optional<std::string>>& upstream_names,
                    bool upstreams_readable, Diagnostics& d) {
    std::vector<std::string> known;
    for (const auto& n : upstream_names)
        if (n) known.push_back(*n);
    // When an upstream's own name is broken, a reference to it would only
    // repeat that error.
    bool all_named = upstreams_readable && known.size() == upstream_names.size();
    std::vector<bool> used(c.upstreams.size(), false);
    // `key` names `name`; its index goes to `index`.
    auto link = [&](const std::optional<Node>& key, const std::string& name, std::size_t& index) {
        if (!key) return;
        auto it = std::find(upstream_names.begin(), upstream_names.end(), name);
        if (it != upstream_names.end()) {
            index = static_cast<std::size_t>(it - upstream_names.begin());
            used[index] = true;
        } else if (all_named) {
            std::string reason = "no upstream named \"" + name + "\"";
            if (auto m = yaml::closest_match(name, known))
                reason += " (did you mean \"" + *m + "\"?)";
            else
                reason += " (upstreams: " + yaml::join(known) + ")";
            key->error(reason);
        }
    };
    for (std::size_t i = 0; i < c.listeners.size(); ++i) {
        auto& l = c.listeners[i];
        link(refs[i].upstream, l.upstream, l.upstream_index);
        for (std::size_t r = 0; r < l.routes.size(); ++r)
            link(refs[i].route_upstreams[r], l.routes[r].upstream, l.routes[r].upstream_index);
        auto see = [&](bool named, std::size_t u) {
            if (!named || u >= c.upstreams.size()) return;
            const auto& up = c.upstreams[u];
            if (up.balancer == BalancerKind::prefix_affinity)
                l.prompt_capture =
                    std::max(l.prompt_capture, up.prefix_affinity.block_bytes *
                                                   PrefixAffinityConfig::kMaxBlocks);
        };
        see(l.has_upstream(), l.upstream_index);
        for (const auto& r : l.routes) see(!r.upstream.empty(), r.upstream_index);
    }
    for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
        if (!used[i] && upstream_names[i])
            d.warning("upstreams[" + std::to_string(i) + "]",
                      "upstream \"" + *upstream_names[i] + "\" is not used by any listener");
    }
}

// --- the document --------------------------------------------------------------

void read_root(Map& root, Config& c, Diagnostics& d) {
    read_workers(root, c);

    std::vector<ListenerRefs> listener_refs;
    if (auto items = read_sections(root, "listeners", "listener")) {
        for (const auto& item : *items) {
            c.listeners.emplace_back();
            listener_refs.push_back(read_listener(item, c.listeners.back()));
        }
    }

    std::vector<std::optional<std::string>> upstream_names;
    auto upstream_items = read_sections(root, "upstreams", "upstream");
    if (upstream_items) {
        for (const auto& item : *upstream_items) {
            c.upstreams.emplace_back();
            upstream_names.push_back(read_upstream(item, c.upstreams.back()));
        }
    }

    if (auto n = root.get("limits")) read_limits(*n, c.limits);
    if (auto n = root.get("logging")) read_logging(*n, c.logging);
    root.read_duration("shutdown_timeout", c.shutdown_timeout, true);
    bool admin_address_ok = true;
    if (auto n = root.get("admin")) admin_address_ok = read_admin(*n, c.admin);
    root.finish();

    std::vector<std::optional<std::string>> listener_names;
    for (const auto& r : listener_refs) listener_names.push_back(r.name);
    check_unique_names(listener_names, "listeners", d);
    check_listener_addresses(c, listener_refs, d);
    if (admin_address_ok) check_admin_address(c, listener_refs, d);
    check_unique_names(upstream_names, "upstreams", d);
    link_upstreams(c, listener_refs, upstream_names, upstream_items.has_value(), d);
}

// "FILE:LINE:COLUMN: reason", like a compiler, so editors can jump to it.
std::string syntax_error(const std::string& source, std::string_view text,
                         const YAML::ParserException& e) {
    std::string where = source;
    if (!e.mark.is_null())
        where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    std::string out = where + ": invalid YAML: " + e.msg;
    // `address: [::]:8443` is YAML for a list followed by garbage.
    static const std::regex unquoted_v6(R"(:\s+\[[0-9A-Fa-f:.%]*\]:[0-9]+)");
    std::istringstream lines{std::string(text)};
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
        if (std::regex_search(line, unquoted_v6)) {
            out += " (line " + std::to_string(number) +
                   ": an IPv6 address must be quoted, e.g. address: \"[::]:8443\")";
            break;
        }
    }
    return out;
}

// Takes yaml-cpp's parse events and drops them: only the documents count.
class DropEvents final : public YAML::EventHandler {
public:
    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// Documents LoadAll would make of `text`, counted up to `bound`. yaml-cpp
// 0.7's LoadAll never returns on some texts (a ',' at the top level: an
// empty document for ever, without reading on, in a list that grows until
// memory runs out), so they are counted with a bound before one is built.
// Throws what LoadAll would throw.
std::size_t count_documents(const std::string& text, std::size_t bound) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DropEvents drop;
    std::size_t n = 0;
    while (n < bound && parser.HandleNextDocument(drop)) ++n;
    return n;
}

}  // namespace

bool plain_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.';
    });
}

access::Policy AdminConfig::default_admin_access() {
    access::Policy p;
    p.allow.add("127.0.0.1/32");
    p.allow.add("::1/128");
    return p;
}

LoadResult load_config_string(std::string_view text, const std::string& source) {
    LoadResult result;
    // More than this is no configuration file, or a text the parser cannot
    // get past.
    constexpr std::size_t kMaxDocuments = 64;
    std::vector<YAML::Node> docs;
    std::size_t count = 0;
    try {
        const std::string copy(text);
        count = count_documents(copy, kMaxDocuments);
        if (count == 1) docs.push_back(YAML::Load(copy));
    } catch (const YAML::ParserException& e) {
        result.errors.push_back(syntax_error(source, text, e));
        return result;
    } catch (const YAML::Exception& e) {
        result.errors.push_back(source + ": invalid YAML: " + e.what());
        return result;
    }
    if (count == kMaxDocuments) {
        result.errors.push_back(source +
                                ": invalid YAML: the parser makes no progress (a ',' outside "
                                "[ ] or { }?), or too many documents");
        return result;
    }
    if (count > 1) {
        result.errors.push_back(source + ": holds " + std::to_string(count) +
                                " YAML documents; write the configuration as one");
        return result;
    }

    Diagnostics d(source);
    auto config = std::make_shared<Config>();
    config->source = source;
    try {
        Node root(docs.empty() ? YAML::Node() : docs.front(), "", d);
        if (root.is_null() || root.raw().IsMap()) {
            // An empty file reads as an empty mapping: it then lacks listeners.
            Map m(root);
            read_root(m, *config, d);
        } else {
            root.error("expected a mapping of settings at the top level (got " + root.describe() +
                       ")");
        }
    } catch (const YAML::Exception& e) {
        d.error("", std::string("invalid YAML: ") + e.what());
    }

    result.errors = std::move(d.errors);
    result.warnings = std::move(d.warnings);
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

LoadResult load_config_file(const std::string& path) {
    LoadResult result;
    auto cannot_read = [&](int err) {
        result.errors.push_back(path + ": cannot read: " + std::strerror(err));
        return result;
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cannot_read(errno);
    std::string text;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            return cannot_read(err);
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return load_config_string(text, path);
}

}  // namespace dsgw::config
