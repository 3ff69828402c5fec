#pragma once
// Re-resolution of servers given by host name (SPEC §3
// upstreams[].resolve_interval): one thread for the whole process, never the
// workers' event loops (getaddrinfo() blocks). Every resolve_interval it
// resolves the host names of an upstream again and reports the servers whose
// set of addresses changed; the App applies such a report like a reload
// (app.cpp), without reading the file again.

#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/config/servers.hpp"

#include <boost/asio/ip/address.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace dsgw::upstream {

struct AddressChange {
    std::size_t upstream = 0;  // index in Config::upstreams
    std::size_t server = 0;    // index in its servers
    std::vector<boost::asio::ip::address> addresses;  // the new set, sorted
};

struct AddressUpdate {
    // The configuration the changes are relative to: they apply only while
    // it is still the one in force.
    std::shared_ptr<const config::Config> base;
    std::vector<AddressChange> changes;
};

using ResolveFn = std::function<std::optional<std::string>(
    const std::string& host, std::vector<boost::asio::ip::address>& out)>;

// One round for cfg.upstreams[u]: every server given by host name is
// resolved again with `resolve`. A name whose addresses differ from the
// configuration's is a change. A name that fails keeps its addresses: the
// first failure is a warning, later ones are only debug lines until it
// resolves again (then a note); `failing` remembers which names fail, from
// round to round.
struct ResolveRound {
    std::vector<AddressChange> changes;
    std::vector<std::string> warnings;  // log at warn
    std::vector<std::string> notes;     // log at info
    std::vector<std::string> debug;     // log at debug
};
ResolveRound re_resolve(const config::Config& cfg, std::size_t u, const ResolveFn& resolve,
                        std::set<std::string>& failing);

// True when some server of `u` is given by host name and re-resolved
// (resolve_interval > 0).
bool re_resolved(const config::UpstreamConfig& u);

class Resolver {
public:
    // `on_update` is called on the resolver's thread with each set of
    // changes found; it must not block (post the update to its owner).
    explicit Resolver(std::function<void(AddressUpdate)> on_update,
                      ResolveFn resolve = config::resolve_host);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Re-resolves the host names of `cfg` from now on: at start, after a
    // reload and after each applied update. The first round for an upstream
    // is one resolve_interval after this call. Any thread.
    void apply(std::shared_ptr<const config::Config> cfg);
    // No callback runs after this returns. A lookup under way cannot be
    // interrupted; if it does not end soon, the thread is left to finish it
    // alone (its state is shared, not owned by this object).
    void stop();

private:
    struct State;
    static void run(const std::shared_ptr<State>& st);
    std::shared_ptr<State> state_;
    std::thread thread_;
};

}  // namespace dsgw::upstream
