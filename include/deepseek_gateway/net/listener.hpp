#pragma once
// Accepts client connections for one configured listener on one worker. Every
// worker binds its own acceptor to the same address with SO_REUSEPORT, so the
// kernel spreads connections over the workers and no hand-off is needed. The
// allow/deny check runs on the peer address before a single byte is read;
// what happens to an admitted connection is the host's business (the worker
// starts a session), so nothing here knows about sessions or workers.

#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/net/socket.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dsgw::access {
struct Admission;
}
namespace dsgw::metrics {
struct ListenerMetrics;
}

namespace dsgw::net {

class Listener;

// What a listener asks of the event loop it runs on (app::Worker). Called on
// that loop's thread only.
class ListenerHost {
public:
    // A listener's entry in the host's current configuration.
    struct Entry {
        const config::AccessConfig* access = nullptr;       // null: a reload removed it
        const metrics::ListenerMetrics* metrics = nullptr;  // null without metrics
    };

    virtual boost::asio::io_context& io() = 0;
    // The entry of the listener named `name`, looked up at every accept (a
    // reload may have changed its access lists).
    virtual Entry listener_entry(std::string_view name) const = 0;
    // An accepted connection: admitted, to be read for a PROXY header, or
    // refused and to be answered with 403 (`admission` says which).
    virtual void on_connection(Listener& listener, Socket socket,
                               const access::Admission& admission) = 0;

protected:
    ~ListenerHost() = default;
};

// Opens, binds and listens. Throws std::system_error naming the address.
boost::asio::ip::tcp::acceptor bind_acceptor(boost::asio::io_context& io,
                                             const boost::asio::ip::tcp::endpoint& ep);

class Listener {
public:
    // `name` identifies the listener's entry in the host's current config.
    Listener(ListenerHost& host, std::string name, boost::asio::ip::tcp::acceptor acceptor,
             std::uint64_t max_connections);
    ~Listener();

    void start();
    // Stops accepting (on the worker thread): the acceptor is closed, so new
    // connections to its address are refused (unless another listener is
    // bound there). Open connections are not touched.
    void stop();
    bool stopped() const { return stopped_; }

    const std::string& name() const { return name_; }
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    // Open connections accepted here.
    std::uint64_t active() const { return active_; }
    // A reload changed limits.max_connections.
    void set_max_connections(std::uint64_t n);

    // Called by sessions when they close.
    void connection_closed();

private:
    void accept();
    void on_accept(boost::system::error_code ec, Socket socket);

    ListenerHost& host_;
    std::string name_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp::endpoint peer_;  // filled by each accept
    std::uint64_t max_connections_;
    std::uint64_t active_ = 0;
    bool paused_ = false;  // at max_connections: new ones wait in the backlog
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace dsgw::net
