#pragma once
// Listening sockets handed over by the service manager (systemd socket
// activation, sd_listen_fds(3)): a unit with a .socket file opens the ports,
// possibly privileged ones, before the daemon starts, and passes them as file
// descriptors 3, 4, ... A listener whose address is one of them takes that
// socket instead of binding (each worker gets a dup of it); the others bind
// as usual. Kept for the life of the process, so a reload that adds such a
// listener back finds the socket again.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <optional>
#include <string>
#include <vector>

namespace dsgw::net {

class InheritedSockets {
public:
    // Takes the sockets passed by the service manager (LISTEN_FDS /
    // LISTEN_PID, removed from the environment). Throws std::runtime_error
    // naming the descriptor when one is not a listening TCP socket.
    static InheritedSockets from_environment();

    InheritedSockets() = default;
    InheritedSockets(InheritedSockets&&) noexcept;
    InheritedSockets& operator=(InheritedSockets&&) noexcept;
    ~InheritedSockets();

    bool empty() const { return sockets_.empty(); }
    std::size_t size() const { return sockets_.size(); }

    // An acceptor on a dup of the inherited socket bound to `ep`, or nothing
    // when none is. Marks that socket used. Throws std::system_error.
    std::optional<boost::asio::ip::tcp::acceptor> acceptor_for(
        boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& ep);

    // Addresses of the inherited sockets no listener has taken ("ADDR (fd N)").
    std::vector<std::string> unused() const;

private:
    struct Socket {
        int fd;
        boost::asio::ip::tcp::endpoint endpoint;
        bool used = false;
    };
    std::vector<Socket> sockets_;
};

// A listener's acceptor on one worker: the inherited socket for `ep` if there
// is one (`from_systemd` set), else a new one bound by bind_acceptor().
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& io,
                                             const boost::asio::ip::tcp::endpoint& ep,
                                             InheritedSockets& inherited, bool* from_systemd);

}  // namespace dsgw::net
