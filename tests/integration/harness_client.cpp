// The harness's HTTP client over raw sockets, concurrent stream runner and
// port helpers (see harness.hpp).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "harness.hpp"
#include "harness_read.hpp"

namespace dsgw::it {

// ---------------------------------------------------------------- Conn

Conn::Conn(Conn&& o) noexcept : fd_(o.fd_), err_(o.err_), buf_(std::move(o.buf_)) {
    o.fd_ = -1;
}

Conn& Conn::operator=(Conn&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        err_ = o.err_;
        buf_ = std::move(o.buf_);
        o.fd_ = -1;
    }
    return *this;
}

Conn::~Conn() {
    close();
}

namespace {
bool make_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& ss,
                   socklen_t& len) {
    std::memset(&ss, 0, sizeof ss);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
        return true;
    }
    std::string h = host;
    if (h.size() > 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}
}  // namespace

bool Conn::connect(std::uint16_t port, const std::string& host, const std::string& source,
                   milliseconds timeout) {
    close();
    buf_.clear();
    sockaddr_storage dst;
    socklen_t dlen;
    if (!make_sockaddr(host, port, dst, dlen)) {
        err_ = EINVAL;
        return false;
    }
    fd_ = ::socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
        err_ = errno;
        return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!source.empty()) {
        sockaddr_storage src;
        socklen_t slen;
        if (!make_sockaddr(source, 0, src, slen) ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&src), slen) != 0) {
            err_ = errno ? errno : EINVAL;
            close();
            return false;
        }
    }
    int r = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), dlen);
    if (r != 0 && errno == EINPROGRESS) {
        pollfd p{fd_, POLLOUT, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
            err_ = ETIMEDOUT;
            close();
            return false;
        }
        int so = 0;
        socklen_t sl = sizeof so;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so, &sl);
        r = so == 0 ? 0 : -1;
        errno = so;
    }
    if (r != 0) {
        err_ = errno;
        close();
        return false;
    }
    // Blocking from here on; every read is guarded by poll().
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    return true;
}

bool Conn::send_all(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            err_ = errno;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

long Conn::recv_some(std::string& out, milliseconds timeout, std::size_t max) {
    if (fd_ < 0) {
        err_ = EBADF;
        return -1;
    }
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd_, POLLIN, 0};
        int r = poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -2;
        if (r < 0) {
            err_ = errno;
            return -1;
        }
        char buf[65536];
        ssize_t n = ::recv(fd_, buf, std::min(max, sizeof buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err_ = errno;
            return -1;
        }
        out.append(buf, static_cast<std::size_t>(n));
        return static_cast<long>(n);
    }
}

std::string Conn::recv_error() const { return std::string("recv: ") + std::strerror(err_); }

std::optional<Response> Conn::read_response(milliseconds timeout, bool head_request,
                                          std::string* error) {
    return reading::response(*this, timeout, head_request, error);
}

StreamResult Conn::read_stream(Clock::time_point sent_at, milliseconds timeout) {
    return reading::stream(*this, sent_at, timeout);
}

bool Conn::read_into(StreamReader& reader, milliseconds timeout, std::size_t until_events) {
    return reading::into(*this, reader, timeout, until_events);
}

Conn::CloseResult Conn::wait_close(milliseconds timeout) {
    return reading::close_wait(*this, timeout);
}

void Conn::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void Conn::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Conn::close_with_reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
}

// ---------------------------------------------------------------- helpers

std::string http_request(const std::string& method, const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body, const std::string& version,
                         const std::string& host) {
    std::string r = method + " " + target + " " + version + "\r\n";
    bool has_host = false, has_len = false;
    for (const auto& [k, v] : headers) {
        has_host |= to_lower(k) == "host";
        has_len |= to_lower(k) == "content-length" || to_lower(k) == "transfer-encoding";
    }
    if (!has_host && !host.empty()) r += "Host: " + host + "\r\n";
    for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
    if (!has_len && (!body.empty() || method == "POST" || method == "PUT"))
        r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

std::string chat_body(bool stream) {
    return std::string(
               R"({"model":"deepseek-chat","messages":[{"role":"user","content":"hello"}],"stream":)") +
           (stream ? "true" : "false") + "}";
}

std::string stream_request(int tokens, int token_delay_ms, int first_token_delay_ms,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
    std::vector<std::pair<std::string, std::string>> h = {
        {"Content-Type", "application/json"},
        {"Accept", "text/event-stream"},
        {"X-Mock-Tokens", std::to_string(tokens)},
        {"X-Mock-Token-Delay-Ms", std::to_string(token_delay_ms)},
        {"X-Mock-First-Token-Delay-Ms", std::to_string(first_token_delay_ms)},
    };
    h.insert(h.end(), extra.begin(), extra.end());
    return http_request("POST", "/v1/chat/completions", h, chat_body(true));
}

std::optional<Response> request_once(std::uint16_t port, const std::string& raw,
                                     const std::string& source, milliseconds timeout,
                                     std::string* error, const std::string& host) {
    Conn c;
    if (!c.connect(port, host, source, timeout)) {
        if (error) *error = std::string("connect: ") + std::strerror(c.last_errno());
        return std::nullopt;
    }
    if (!c.send_all(raw)) {
        if (error) *error = std::string("send: ") + std::strerror(c.last_errno());
        return std::nullopt;
    }
    bool head = raw.rfind("HEAD ", 0) == 0;
    return c.read_response(timeout, head, error);
}

std::vector<StreamResult> run_concurrent_streams(std::uint16_t port, int n, const std::string& raw,
                                                 milliseconds timeout, milliseconds ramp) {
    return run_concurrent_streams(std::vector<std::uint16_t>(static_cast<std::size_t>(n), port),
                                  raw, timeout, ramp);
}

std::vector<StreamResult> run_concurrent_streams(const std::vector<std::uint16_t>& ports,
                                                 const std::string& raw, milliseconds timeout,
                                                 milliseconds ramp) {
    const std::size_t n = ports.size();
    std::vector<Conn> conns(n);
    std::vector<std::unique_ptr<StreamReader>> readers;
    std::vector<bool> active(n, false);
    // Connect everything first, so that no stream runs while the client is
    // still busy connecting; then send request i at start + i * ramp / n
    // while reading the streams already started.
    for (std::size_t i = 0; i < n; ++i) {
        readers.push_back(std::make_unique<StreamReader>(Clock::now()));
        if (!conns[i].connect(ports[i]))
            readers.back()->result().error =
                std::string("connect: ") + std::strerror(conns[i].last_errno());
    }
    const auto start = Clock::now();
    const auto deadline = start + ramp + timeout;
    auto send_time = [&](std::size_t i) {
        return start + std::chrono::duration_cast<Clock::duration>(ramp) * static_cast<long>(i) /
                           static_cast<long>(std::max<std::size_t>(n, 1));
    };
    std::size_t next_send = 0;
    std::vector<pollfd> pfds;
    std::vector<std::size_t> idx;
    for (;;) {
        for (; next_send < n && send_time(next_send) <= Clock::now(); ++next_send) {
            if (!conns[next_send].is_open()) continue;
            readers[next_send]->result().sent_at = Clock::now();
            if (conns[next_send].send_all(raw))
                active[next_send] = true;
            else
                readers[next_send]->result().error = "send failed";
        }
        pfds.clear();
        idx.clear();
        for (std::size_t i = 0; i < n; ++i)
            if (active[i]) {
                pfds.push_back({conns[i].fd(), POLLIN, 0});
                idx.push_back(i);
            }
        if (pfds.empty() && next_send >= n) break;
        auto now = Clock::now();
        if (now >= deadline) break;
        auto until = next_send < n ? std::min(deadline, send_time(next_send)) : deadline;
        auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(until - now).count();
        int wait_ms = static_cast<int>((wait_us + 999) / 1000);
        int r = poll(pfds.data(), pfds.size(), wait_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        now = Clock::now();
        for (std::size_t k = 0; k < pfds.size() && r > 0; ++k) {
            if (!pfds[k].revents) continue;
            std::size_t i = idx[k];
            char buf[65536];
            ssize_t got = ::recv(conns[i].fd(), buf, sizeof buf, MSG_DONTWAIT);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            bool finished;
            if (got < 0) {
                readers[i]->result().error = std::string("recv: ") + std::strerror(errno);
                finished = true;
            } else if (got == 0) {
                finished = readers[i]->on_eof(now);
            } else {
                finished =
                    readers[i]->on_data(std::string_view(buf, static_cast<std::size_t>(got)), now);
            }
            if (finished) active[i] = false;
        }
    }
    std::vector<StreamResult> results(n);
    for (std::size_t i = 0; i < n; ++i) {
        results[i] = readers[i]->result();
        if ((active[i] || i >= next_send) && results[i].error.empty())
            results[i].error = "timed out";
    }
    return results;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
    std::size_t i = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
    return v[std::min(i, v.size() - 1)];
}

std::uint64_t fnv1a64(std::string_view data) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : data) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// ---------------------------------------------------------------- ports

namespace {
int bound_socket(std::uint16_t& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        return -1;
    }
    port = ntohs(a.sin_port);
    return fd;
}
}  // namespace

ClosedPort::ClosedPort() {
    fd_ = bound_socket(port_);
}
ClosedPort::~ClosedPort() {
    if (fd_ >= 0) ::close(fd_);
}

BusyPort::BusyPort() {
    fd_ = bound_socket(port_);
    if (fd_ >= 0 && ::listen(fd_, 1) != 0) {
        ::close(fd_);
        fd_ = -1;
        port_ = 0;
    }
}
BusyPort::~BusyPort() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace dsgw::it
