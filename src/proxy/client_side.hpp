#pragma once
// What an exchange uses of the client connection it runs on: the stream and
// its read buffer, the deadline, who the client is, the configuration in
// force for the request, and the hang-up watch. proxy::Connection is the one
// implementation (connection.cpp).

#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/net/stream.hpp"
#include "proxy/deadline.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsgw::app {
class Worker;
class Runtime;
}  // namespace dsgw::app
namespace dsgw::config {
struct ListenerConfig;
}

namespace dsgw::proxy {

// Client reads start at this size and double while they fill it, up to kMaxRead.
inline constexpr std::size_t kMinRead = 4096;
inline constexpr std::size_t kMaxRead = 64 * 1024;

inline void adapt_read_size(std::size_t n, std::size_t& read_size) {
    if (n == read_size && read_size < kMaxRead) read_size *= 2;
}

class ClientSide {
public:
    ClientSide(app::Worker& w, net::Stream& s, Deadline& d) : worker(w), stream(s), deadline(d) {}

    app::Worker& worker;
    net::Stream& stream;
    Deadline& deadline;
    boost::beast::flat_buffer buf;  // read, not yet parsed
    std::size_t read_size = kMinRead;

    // Who: the socket's peer (or the PROXY header's source), the client
    // behind trusted proxies (set per request), the verified mTLS subject.
    boost::asio::ip::address conn_ip;
    boost::asio::ip::address ip;
    std::string ip_text;
    std::string cert;
    std::string_view listener_name;
    access::Decision decision = access::Decision::allowed;  // at accept

    // The configuration the current request is served by.
    std::shared_ptr<const app::Runtime> rt;
    const config::ListenerConfig* lc = nullptr;
    std::size_t listener_index = 0;  // in rt's listeners (and metric handles)

    bool gone = false;          // hung up, or a write to it failed
    bool last_request = false;  // the listener left the configuration: close after this one
    bool linger = false;        // close() reads what the client still sends
    std::uint64_t requests = 0;

    // The hang-up watch over a response: armed 10-20 ms later (most
    // responses are done by then), at once (waiting in a queue), or stopped.
    virtual void watch_soon() = 0;
    virtual void watch_now() = 0;
    virtual void stop_watch() = 0;
    // A write to the client failed: it is gone.
    virtual void on_gone() = 0;

protected:
    ~ClientSide() = default;
};

// Writes all of `iov` to the client (at once when it can), under the
// client_write deadline; `counted` grows by what went (relay.cpp).
net::Task<boost::system::error_code> write_to_client(
    ClientSide& client, const std::vector<boost::asio::const_buffer>& iov, std::uint64_t& counted);

}  // namespace dsgw::proxy
