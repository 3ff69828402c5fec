#include "raw_upstream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <regex>

namespace dsgw::it {

namespace {

bool iequal_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) !=
            std::tolower(static_cast<unsigned char>(name[i])))
            return false;
    return true;
}

// The value of the field `name` in a head (lines split on CRLF), or nothing.
std::optional<std::string_view> field_value(std::string_view head, std::string_view name) {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        const auto start = pos + 2;
        auto end = head.find("\r\n", start);
        if (end == std::string_view::npos) end = head.size();
        auto line = head.substr(start, end - start);
        if (iequal_prefix(line, name) && line.size() > name.size() && line[name.size()] == ':') {
            auto v = line.substr(name.size() + 1);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
            return v;
        }
        pos = end;
    }
    return std::nullopt;
}

// The length of a chunked body at the start of `body`, or 0 while incomplete.
std::size_t chunked_length(std::string_view body) {
    std::size_t pos = 0;
    for (;;) {
        auto eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos) return 0;
        std::size_t size = 0;
        std::size_t i = pos;
        for (; i < eol && std::isxdigit(static_cast<unsigned char>(body[i])); ++i)
            size =
                size * 16 + static_cast<std::size_t>(
                                std::isdigit(static_cast<unsigned char>(body[i]))
                                    ? body[i] - '0'
                                    : std::tolower(static_cast<unsigned char>(body[i])) - 'a' + 10);
        pos = eol + 2;
        if (size == 0) {
            // Trailer fields up to an empty line.
            for (;;) {
                auto end = body.find("\r\n", pos);
                if (end == std::string_view::npos) return 0;
                if (end == pos) return end + 2;
                pos = end + 2;
            }
        }
        if (body.size() < pos + size + 2) return 0;
        pos += size + 2;
    }
}

}  // namespace

std::size_t complete_request_length(std::string_view data) {
    auto end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) return 0;
    const auto head_len = end + 4;
    auto head = data.substr(0, end + 2);
    if (auto te = field_value(head, "Transfer-Encoding"); te && iequal_prefix(*te, "chunked")) {
        auto n = chunked_length(data.substr(head_len));
        return n == 0 ? 0 : head_len + n;
    }
    std::size_t length = 0;
    if (auto cl = field_value(head, "Content-Length")) {
        for (char c : *cl) {
            if (!std::isdigit(static_cast<unsigned char>(c))) break;
            length = length * 10 + static_cast<std::size_t>(c - '0');
        }
    }
    return data.size() >= head_len + length ? head_len + length : 0;
}

RawUpstream::RawUpstream(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return;
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        ::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
}

RawUpstream::~RawUpstream() {
    if (thread_.joinable()) {
        char c = 'x';
        [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
        thread_.join();
    }
    for (auto& c : conns_)
        if (c.fd >= 0) ::close(c.fd);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    for (int fd : wake_)
        if (fd >= 0) ::close(fd);
}

void RawUpstream::serve() {
    for (;;) {
        std::vector<pollfd> fds;
        std::vector<std::size_t> which;
        int timeout_ms = 20;
        fds.push_back({wake_[0], POLLIN, 0});
        fds.push_back({listen_fd_, POLLIN, 0});
        {
            std::lock_guard lk(mu_);
            const auto now = Clock::now();
            for (std::size_t i = 0; i < conns_.size(); ++i) {
                auto& c = conns_[i];
                if (c.fd < 0) continue;
                if (!c.then.empty() || c.close_after_then) {
                    if (now >= c.then_at) {
                        if (!c.then.empty()) [[maybe_unused]]
                            auto n = ::send(c.fd, c.then.data(), c.then.size(), MSG_NOSIGNAL);
                        c.then.clear();
                        if (c.close_after_then) {
                            ::close(c.fd);
                            c.fd = -1;
                            c.close_after_then = false;
                            continue;
                        }
                    } else {
                        timeout_ms = std::min<int>(
                            timeout_ms,
                            static_cast<int>(
                                std::chrono::duration_cast<milliseconds>(c.then_at - now).count()) +
                                1);
                    }
                }
                if (c.peer_closed) continue;
                fds.push_back({c.fd, POLLIN, 0});
                which.push_back(i);
            }
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
        if (fds[0].revents) return;
        if (fds[1].revents & POLLIN) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) {
                timeval tv{2, 0};
                ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                std::lock_guard lk(mu_);
                conns_.push_back(Connection{});
                conns_.back().fd = fd;
            }
        }
        for (std::size_t k = 2; k < fds.size(); ++k)
            if (fds[k].revents) on_readable(which[k - 2]);
    }
}

void RawUpstream::on_readable(std::size_t index) {
    int fd;
    {
        std::lock_guard lk(mu_);
        fd = conns_[index].fd;
    }
    char buf[65536];
    auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    std::vector<std::pair<std::size_t, std::string>> complete;  // (global index, bytes)
    {
        std::lock_guard lk(mu_);
        auto& c = conns_[index];
        if (n <= 0) {
            c.peer_closed = true;
            return;
        }
        c.received.append(buf, static_cast<std::size_t>(n));
        for (;;) {
            auto len = complete_request_length(std::string_view(c.received).substr(c.parsed));
            if (len == 0) break;
            c.requests.push_back(c.received.substr(c.parsed, len));
            c.parsed += len;
            complete.emplace_back(request_count_++, c.requests.back());
        }
    }
    for (auto& [i, bytes] : complete) answer(index, script_(index, i, bytes));
}

void RawUpstream::answer(std::size_t index, Reply reply) {
    int fd;
    {
        std::lock_guard lk(mu_);
        fd = conns_[index].fd;
    }
    if (fd < 0) return;
    if (reply.custom) {
        reply.custom(fd);
    } else if (!reply.bytes.empty()) {
        // One send() for all of it: what a test appends arrives in the same
        // segment as the response. A very large reply may need more.
        std::size_t done = 0;
        while (done < reply.bytes.size()) {
            auto n = ::send(fd, reply.bytes.data() + done, reply.bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
    }
    std::lock_guard lk(mu_);
    auto& c = conns_[index];
    if (!reply.then.empty() || reply.close) {
        c.then = std::move(reply.then);
        c.then_at = Clock::now() + reply.then_after;
        c.close_after_then = reply.close;
        if (c.then.empty() && reply.then_after.count() == 0) {
            ::close(c.fd);
            c.fd = -1;
            c.close_after_then = false;
        }
    }
}

std::size_t RawUpstream::connections() const {
    std::lock_guard lk(mu_);
    return conns_.size();
}

std::string RawUpstream::received(std::size_t conn) const {
    std::lock_guard lk(mu_);
    return conn < conns_.size() ? conns_[conn].received : std::string();
}

std::string RawUpstream::received_all() const {
    std::lock_guard lk(mu_);
    std::string all;
    for (const auto& c : conns_) all += c.received;
    return all;
}

std::vector<std::string> RawUpstream::requests(std::size_t conn) const {
    std::lock_guard lk(mu_);
    return conn < conns_.size() ? conns_[conn].requests : std::vector<std::string>{};
}

std::size_t RawUpstream::request_count() const {
    std::lock_guard lk(mu_);
    return request_count_;
}

bool RawUpstream::peer_closed(std::size_t conn) const {
    std::lock_guard lk(mu_);
    return conn < conns_.size() && conns_[conn].peer_closed;
}

template <class Pred>
bool RawUpstream::wait(Pred pred, milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

bool RawUpstream::wait_connections(std::size_t n, milliseconds timeout) const {
    return wait([&] { return connections() >= n; }, timeout);
}

bool RawUpstream::wait_requests(std::size_t n, milliseconds timeout) const {
    return wait([&] { return request_count() >= n; }, timeout);
}

bool RawUpstream::wait_peer_closed(std::size_t conn, milliseconds timeout) const {
    return wait([&] { return peer_closed(conn); }, timeout);
}

// ---------------------------------------------------------------- helpers

RawUpstream::Reply reply(std::string bytes) {
    RawUpstream::Reply r;
    r.bytes = std::move(bytes);
    return r;
}

GatewayConfig raw_config(const RawUpstream& upstream) {
    GatewayConfig c = basic_config(std::vector<std::string>{upstream.address()});
    c.workers = "1";
    c.upstream().retries = 0;
    c.upstream().first_byte_timeout = "5s";
    c.upstream().idle_timeout = "5s";
    return c;
}

std::optional<std::uint16_t> admin_port(Gateway& gw) {
    static const std::regex re(R"(admin listening on 127\.0\.0\.1:(\d+))");
    auto m = gw.process().wait_for_line(re, 2s);
    if (!m) return std::nullopt;
    return static_cast<std::uint16_t>(std::stoi((*m)[1]));
}

double upstream_errors(std::uint16_t admin, std::string_view kind) {
    auto r = request_once(admin, http_request("GET", "/metrics", {}, "", "HTTP/1.1", "admin"));
    if (!r || r->status != 200) return -1;
    const std::string series = "deepseek_gateway_upstream_errors_total{";
    const std::string label = "kind=\"" + std::string(kind) + "\"";
    double sum = 0;
    std::size_t pos = 0;
    while (pos < r->body.size()) {
        auto end = r->body.find('\n', pos);
        if (end == std::string::npos) end = r->body.size();
        std::string_view line(r->body.data() + pos, end - pos);
        pos = end + 1;
        if (line.rfind(series, 0) != 0 || line.find(label) == std::string_view::npos) continue;
        auto close = line.rfind('}');
        if (close == std::string_view::npos) continue;
        sum += std::stod(std::string(line.substr(close + 1)));
    }
    return sum;
}

RawRead read_until_close(Conn& c, milliseconds timeout) {
    RawRead r;
    r.data = std::move(c.pending_bytes());
    c.pending_bytes().clear();
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return r;
        auto n = c.recv_some(r.data, left);
        if (n == 0 || n == -1) {
            r.closed = true;
            r.reset = n == -1 && c.recv_was_reset();
            return r;
        }
        if (n == -2) return r;
    }
}

std::string forwarded(std::string_view start_line, std::string_view fields,
                      std::string_view forwarded_host, std::string_view framing,
                      std::string_view body) {
    std::string s(start_line);
    s += "\r\n";
    s += fields;
    s += framing;
    s += "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n";
    if (!forwarded_host.empty()) s += "X-Forwarded-Host: " + std::string(forwarded_host) + "\r\n";
    s += "Via: 1.1 deepseek-gateway\r\n\r\n";
    s += body;
    return s;
}

bool is_gateway_error(const Response& r, int status, std::string* why) {
    auto fail = [&](std::string w) {
        if (why) *why = std::move(w) + " in: " + r.body;
        return false;
    };
    if (r.status != status) return fail("status " + std::to_string(r.status));
    if (r.header("Content-Type").value_or("") != "application/json")
        return fail("content type " + r.header("Content-Type").value_or("(none)"));
    auto j = r.json();
    if (!j) return fail("not JSON");
    const Json* e = j->get("error");
    if (!e || e->type != Json::Type::object) return fail("no error object");
    const Json* m = e->get("message");
    const Json* t = e->get("type");
    const Json* code = e->get("code");
    if (!m || !m->is_string() || m->str.empty()) return fail("no message");
    if (!t || t->str != "gateway_error") return fail("type is not gateway_error");
    if (!code || code->as_int() != status) return fail("code is not " + std::to_string(status));
    return true;
}

long vm_rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace dsgw::it
