#include "deepseek_gateway/net/inherited.hpp"

#include "deepseek_gateway/net/listener.hpp"

#include <systemd/sd-daemon.h>

#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace dsgw::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

InheritedSockets InheritedSockets::from_environment() {
    InheritedSockets out;
    const int n = sd_listen_fds(1);  // 1: unset LISTEN_* so children do not see them
    if (n < 0)
        throw std::runtime_error(std::string("socket activation: ") + std::strerror(-n));
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
        // Listening stream sockets of the internet families only.
        if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)
            throw std::runtime_error("socket activation: file descriptor " + std::to_string(fd) +
                                     " is not a listening TCP socket (the .socket unit must "
                                     "use ListenStream= with an IP address and port)");
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw std::runtime_error("socket activation: file descriptor " + std::to_string(fd) +
                                     ": " + std::strerror(errno));
        tcp::endpoint ep;
        ep.resize(len);
        std::memcpy(ep.data(), &ss, len);
        out.sockets_.push_back({fd, ep});
    }
    return out;
}

InheritedSockets::InheritedSockets(InheritedSockets&& o) noexcept
    : sockets_(std::exchange(o.sockets_, {})) {}

InheritedSockets& InheritedSockets::operator=(InheritedSockets&& o) noexcept {
    if (this != &o) {
        for (const auto& s : sockets_) ::close(s.fd);
        sockets_ = std::exchange(o.sockets_, {});
    }
    return *this;
}

InheritedSockets::~InheritedSockets() {
    for (const auto& s : sockets_) ::close(s.fd);
}

std::optional<tcp::acceptor> InheritedSockets::acceptor_for(asio::io_context& io,
                                                            const tcp::endpoint& ep) {
    for (auto& s : sockets_) {
        if (s.endpoint != ep) continue;
        const int fd = ::fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            throw std::system_error(errno, std::generic_category(),
                                    "cannot duplicate the socket from systemd for " +
                                        endpoint_text(ep));
        tcp::acceptor a(io);
        boost::system::error_code ec;
        a.assign(ep.protocol(), fd, ec);
        if (ec) {
            ::close(fd);
            throw std::system_error(ec.value(), std::generic_category(),
                                    "cannot use the socket from systemd for " + endpoint_text(ep));
        }
        s.used = true;
        return a;
    }
    return std::nullopt;
}

std::vector<std::string> InheritedSockets::unused() const {
    std::vector<std::string> out;
    for (const auto& s : sockets_)
        if (!s.used) out.push_back(endpoint_text(s.endpoint) + " (fd " + std::to_string(s.fd) + ")");
    return out;
}

tcp::acceptor open_acceptor(asio::io_context& io, const tcp::endpoint& ep,
                            InheritedSockets& inherited, bool* from_systemd) {
    if (auto a = inherited.acceptor_for(io, ep)) {
        if (from_systemd) *from_systemd = true;
        return std::move(*a);
    }
    if (from_systemd) *from_systemd = false;
    return bind_acceptor(io, ep);
}

}  // namespace dsgw::net
