// The delay a routed request's body adds (bench/routes.sh): the time from the
// client's last body byte to the first byte of the request at the server.
// This program is both ends: it listens as the upstream server (the gateway's
// configuration points at LISTEN_PORT), connects to the gateway as the client,
// sends a request whose body is complete but for its last byte, waits, then
// sends that byte and times, on CLOCK_MONOTONIC, until the first byte of the
// request reaches its server side (and until the whole request has).
//
//   route_probe GATEWAY_PORT LISTEN_PORT BODY_BYTES MODEL_LAST(0|1) ROUNDS
//
// Prints one line per round: "first_us=F whole_us=W". A gateway that streams
// bodies (no routes) has sent the head long before: its first_us is 0 and
// whole_us is its delay for the last byte. Loopback only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

int tcp_socket() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

void send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const auto k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) die("send");
        p += k;
        n -= static_cast<std::size_t>(k);
    }
}

// The next connection from the gateway that carries a request of ours. A
// GET (the gateway fetching /v1/models for its model list) is answered and
// closed. With `now`, only a connection already waiting (else -1).
int accept_probe(int lfd, bool now) {
    for (;;) {
        if (now) {
            pollfd p{lfd, POLLIN, 0};
            if (::poll(&p, 1, 0) != 1) return -1;
        }
        const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) die("accept");
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char first[4];
        // The gateway connects when it has a request to send: wait for it.
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, now ? 0 : 5000) != 1) return fd;  // a POST still to come
        if (::recv(fd, first, 4, MSG_PEEK) == 4 && std::memcmp(first, "GET ", 4) == 0) {
            char junk[4096];
            (void)::recv(fd, junk, sizeof junk, 0);
            static constexpr char kList[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"data\":[]}";
            send_all(fd, kList, sizeof kList - 1);
            ::close(fd);
            continue;
        }
        return fd;
    }
}

// A chat request of exactly `size` body bytes, "model" first or last.
std::string body_of(std::size_t size, bool model_last) {
    const std::string model = R"("model":"deepseek-mock")";
    const std::string head = model_last ? R"({"messages":[{"role":"user","content":")"
                                        : "{" + model + R"(,"messages":[{"role":"user","content":")";
    const std::string tail = model_last ? R"("}],)" + model + "}" : R"("}]})";
    const std::size_t pad = size > head.size() + tail.size() ? size - head.size() - tail.size() : 0;
    return head + std::string(pad, 'a') + tail;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: %s GATEWAY_PORT LISTEN_PORT BODY_BYTES MODEL_LAST ROUNDS\n",
                     argv[0]);
        return 2;
    }
    const int gw_port = std::atoi(argv[1]);
    const int listen_port = std::atoi(argv[2]);
    const std::size_t size = std::strtoull(argv[3], nullptr, 10);
    const bool model_last = std::atoi(argv[4]) != 0;
    const int rounds = std::atoi(argv[5]);

    const int lfd = tcp_socket();
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto la = loopback(listen_port);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0) die("bind");
    if (::listen(lfd, 16) != 0) die("listen");

    const std::string body = body_of(size, model_last);
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: probe\r\n"
                             "Content-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n";
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

    const int cfd = tcp_socket();
    auto ga = loopback(gw_port);
    if (::connect(cfd, reinterpret_cast<sockaddr*>(&ga), sizeof ga) != 0) die("connect");
    int sfd = -1;  // the gateway's connection to us (kept alive between rounds)
    std::string buf(1 << 20, '\0');

    for (int r = 0; r < rounds; ++r) {
        send_all(cfd, head.data(), head.size());
        send_all(cfd, body.data(), body.size() - 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        // What arrived before the last byte (a gateway that streams the body).
        std::size_t got = 0;
        std::string seen;  // the round's first bytes at the server: its head
        const std::size_t want = 1;  // at least the request line: any byte
        if (sfd < 0) sfd = accept_probe(lfd, true);
        if (sfd >= 0) {
            for (;;) {
                pollfd p{sfd, POLLIN, 0};
                if (::poll(&p, 1, 0) != 1) break;
                const auto k = ::recv(sfd, buf.data(), buf.size(), 0);
                if (k <= 0) die("recv before");
                got += static_cast<std::size_t>(k);
                if (seen.size() < 4096) seen.append(buf.data(), static_cast<std::size_t>(k));
            }
        }
        const bool streamed = got >= want;
        const auto t0 = Clock::now();
        send_all(cfd, body.data() + body.size() - 1, 1);
        if (sfd < 0) sfd = accept_probe(lfd, false);
        auto first = streamed ? t0 : Clock::time_point{};
        // The whole request: its head (any length) and the body.
        for (;;) {
            const auto k = ::recv(sfd, buf.data(), buf.size(), 0);
            if (k <= 0) die("recv");
            if (first == Clock::time_point{}) first = Clock::now();
            got += static_cast<std::size_t>(k);
            if (seen.size() < 4096) seen.append(buf.data(), static_cast<std::size_t>(k));
            const auto end = seen.find("\r\n\r\n");
            if (end != std::string::npos) {
                const auto cl = seen.find("Content-Length: ");
                const std::size_t n =
                    cl == std::string::npos ? 0 : std::strtoull(seen.c_str() + cl + 16, nullptr, 10);
                // `got` counts the whole stream of this round (head + body).
                if (got >= end + 4 + n) break;
            }
        }
        const auto whole = Clock::now();
        send_all(sfd, reply.data(), reply.size());
        // The client's response.
        std::size_t resp = 0;
        while (resp < reply.size()) {
            const auto k = ::recv(cfd, buf.data(), buf.size(), 0);
            if (k <= 0) die("client recv");
            resp += static_cast<std::size_t>(k);  // the gateway's head differs in length: enough
            if (std::string_view(buf.data(), static_cast<std::size_t>(k)).find("{}") !=
                std::string_view::npos)
                break;
        }
        using us = std::chrono::duration<double, std::micro>;
        std::printf("first_us=%.1f whole_us=%.1f\n", us(first - t0).count(), us(whole - t0).count());
        std::fflush(stdout);
    }
    ::close(cfd);
    if (sfd >= 0) ::close(sfd);
    ::close(lfd);
    return 0;
}
