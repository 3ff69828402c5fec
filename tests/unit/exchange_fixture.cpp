// The exchange tests' bench: the gateway built in one place (start()), the
// scripted sockets, the HTTP/1 reader the test checks bytes with.

#include "exchange_fixture.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/log/access_log.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace dsgw::test {

namespace {

using namespace std::chrono_literals;

// Only bounds a wait that would otherwise hang; no outcome depends on it.
constexpr auto kSafetyNet = std::chrono::seconds(10);

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

std::uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

bool same(const sockaddr_in& a, const sockaddr_in& b) {
    return a.sin_family == b.sin_family && a.sin_port == b.sin_port &&
           a.sin_addr.s_addr == b.sin_addr.s_addr;
}

// Reads a chunked body starting at `pos`. The end of the message, or npos
// when it is not complete.
std::size_t chunked_end(std::string_view buf, std::size_t pos, std::string& body, bool& bad) {
    for (;;) {
        const auto eol = buf.find("\r\n", pos);
        if (eol == std::string_view::npos) return std::string_view::npos;
        auto line = buf.substr(pos, eol - pos);
        line = line.substr(0, line.find(';'));
        std::size_t size = 0;
        if (line.empty()) {
            bad = true;
            return std::string_view::npos;
        }
        for (char c : line) {
            const int d = std::isdigit(static_cast<unsigned char>(c))
                              ? c - '0'
                              : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
            if (d < 0 || d > 15) {
                bad = true;
                return std::string_view::npos;
            }
            size = size * 16 + static_cast<std::size_t>(d);
        }
        pos = eol + 2;
        if (size == 0) {
            // Trailer fields, then an empty line.
            for (;;) {
                const auto e = buf.find("\r\n", pos);
                if (e == std::string_view::npos) return std::string_view::npos;
                const bool empty = e == pos;
                pos = e + 2;
                if (empty) return pos;
            }
        }
        if (buf.size() < pos + size + 2) return std::string_view::npos;
        body.append(buf.substr(pos, size));
        if (buf.substr(pos + size, 2) != "\r\n") {
            bad = true;
            return std::string_view::npos;
        }
        pos += size + 2;
    }
}

}  // namespace

// ---- Message ----------------------------------------------------------------

std::optional<std::string> Message::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequals(n, name)) return v;
    return std::nullopt;
}

std::size_t Message::count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& h : headers)
        if (iequals(h.first, name)) ++n;
    return n;
}

std::optional<Message> parse_message(std::string_view buf, MessageKind kind, bool eof,
                                     bool* bad_out) {
    bool bad = false;
    auto fail = [&]() -> std::optional<Message> {
        if (bad_out) *bad_out = bad;
        return std::nullopt;
    };
    const auto head_end = buf.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        bad = eof && !buf.empty();
        return fail();
    }
    Message m;
    std::string_view head = buf.substr(0, head_end + 2);
    auto eol = head.find("\r\n");
    const std::string_view start = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const auto sp1 = start.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos) {
        bad = true;
        return fail();
    }
    if (kind == MessageKind::request) {
        if (sp2 == std::string_view::npos) {
            bad = true;
            return fail();
        }
        m.method = std::string(start.substr(0, sp1));
        m.target = std::string(start.substr(sp1 + 1, sp2 - sp1 - 1));
        m.version = std::string(start.substr(sp2 + 1));
    } else {
        m.version = std::string(start.substr(0, sp1));
        const auto code = start.substr(sp1 + 1, 3);
        if (code.size() != 3 || m.version.rfind("HTTP/", 0) != 0) {
            bad = true;
            return fail();
        }
        m.status = static_cast<unsigned>(std::atoi(std::string(code).c_str()));
        if (sp2 != std::string_view::npos) m.reason = std::string(start.substr(sp2 + 1));
    }
    while (!head.empty()) {
        eol = head.find("\r\n");
        const auto line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            bad = true;
            return fail();
        }
        m.headers.emplace_back(std::string(line.substr(0, colon)),
                               std::string(trim(line.substr(colon + 1))));
    }
    std::size_t pos = head_end + 4;
    std::size_t end = pos;
    const auto te = m.header("Transfer-Encoding");
    const auto cl = m.header("Content-Length");
    const bool no_body = kind == MessageKind::response_to_head ||
                         (kind != MessageKind::request && ((m.status >= 100 && m.status < 200) ||
                                                           m.status == 204 || m.status == 304));
    if (no_body) {
        end = pos;
    } else if (te && iequals(*te, "chunked")) {
        m.chunked = true;
        end = chunked_end(buf, pos, m.body, bad);
        if (end == std::string_view::npos) return fail();
    } else if (cl) {
        const auto n = static_cast<std::size_t>(std::strtoull(cl->c_str(), nullptr, 10));
        if (buf.size() < pos + n) return fail();
        m.body = std::string(buf.substr(pos, n));
        end = pos + n;
    } else if (kind == MessageKind::response) {
        if (!eof) return fail();  // close-delimited
        m.body = std::string(buf.substr(pos));
        end = buf.size();
    }
    m.raw = std::string(buf.substr(0, end));
    return m;
}

// ---- Endpoint ---------------------------------------------------------------

Endpoint::Endpoint(int fd) : fd_(fd) {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Endpoint::~Endpoint() {
    if (fd_ >= 0) ::close(fd_);
}

void Endpoint::send(std::string_view bytes) {
    ASSERT_GE(fd_, 0) << "send on a closed test socket";
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        ASSERT_GT(n, 0) << "test socket send: " << std::strerror(errno);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void Endpoint::pump() {
    if (fd_ < 0 || closed()) return;
    char buf[16384];
    for (;;) {
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            in_.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {
            eof_ = true;
            return;
        }
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) reset_ = true;
        return;  // EAGAIN: nothing more now
    }
}

std::optional<Message> Endpoint::take(MessageKind kind) {
    auto m = parse_message(in_, kind, closed());
    if (m) in_.erase(0, m->raw.size());
    return m;
}

bool Endpoint::has(MessageKind kind) const {
    return parse_message(in_, kind, closed()).has_value();
}

void Endpoint::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Endpoint::reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
}

// ---- ScriptedUpstream -------------------------------------------------------

ScriptedUpstream::ScriptedUpstream() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto a = loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
        ADD_FAILURE() << "scripted upstream: " << std::strerror(errno);
        return;
    }
    port_ = local_port(listen_fd_);
}

ScriptedUpstream::~ScriptedUpstream() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string ScriptedUpstream::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void ScriptedUpstream::pump() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        conns_.push_back(std::make_unique<Endpoint>(fd));
    }
}

// ---- the gateway ------------------------------------------------------------

struct ExchangeTest::Gateway {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const app::Runtime> runtime;
    std::shared_ptr<log::AccessLog> access_log;
    std::unique_ptr<app::Worker> worker;
    net::Listener* listener = nullptr;  // owned by the worker

    // The worker goes first: its sessions refer to the listener it owns
    // and to the runtime.
    ~Gateway() { worker.reset(); }
};

ExchangeTest::ExchangeTest() {
    refused_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = loopback(0);
    ::bind(refused_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);  // bound, not listening
    refused_address_ = "127.0.0.1:" + std::to_string(local_port(refused_fd_));
    std::string tmpl = ::testing::TempDir() + "dsgw-exchange-XXXXXX";
    if (::mkdtemp(tmpl.data())) dir_ = tmpl;
}

ExchangeTest::~ExchangeTest() {
    gw_.reset();
    clients_.clear();
    if (refused_fd_ >= 0) ::close(refused_fd_);
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

std::string ExchangeTest::config_yaml(const GatewayOptions& o) const {
    std::ostringstream y;
    y << "workers: 1\n"
      << "listeners:\n"
      << "  - name: test\n"
      << "    address: 127.0.0.1:0\n"
      << "    access: {allow: " << o.allow << ", on_deny: " << o.on_deny << "}\n";
    if (o.default_upstream) y << "    upstream: up\n";
    if (!o.auth.empty()) y << "    auth: " << o.auth << "\n";
    if (!o.routes.empty()) y << "    routes: " << o.routes << "\n";
    y << "upstreams:\n"
      << "  - name: up\n"
      << "    balancer: round_robin\n"
      << "    servers:\n";
    if (o.servers.empty()) y << "      - address: " << upstream_.address() << "\n";
    for (const auto& s : o.servers) y << "      - address: " << s << "\n";
    y << "    retries: " << o.retries << "\n"
      << "    timeouts: {connect: " << o.connect_timeout << ", first_byte: " << o.first_byte_timeout
      << ", idle: " << o.idle_timeout << "}\n";
    if (o.max_in_flight > 0)
        y << "    max_in_flight: " << o.max_in_flight << "\n    queue: " << o.queue << "\n";
    y << "limits: {max_header_bytes: " << o.max_header_bytes
      << ", max_request_body: " << o.max_request_body << ", header_timeout: " << o.header_timeout
      << ", client_idle: " << o.client_idle << "}\n"
      << "logging: {access_log: " << dir_ << "/access.log}\n"
      << "admin: {address: 127.0.0.1:0}\n";
    return y.str();
}

// Every construction of the gateway's parts is here, and only here.
void ExchangeTest::start(const GatewayOptions& options) {
    const auto yaml = config_yaml(options);
    auto loaded = config::load_config_string(yaml, "exchange-test");
    if (!loaded.errors.empty())  // the test body stops here (gtest reports the exception)
        throw std::runtime_error("test configuration: " + loaded.errors.front() + "\n" + yaml);
    gw_ = std::make_unique<Gateway>();
    gw_->config = loaded.config;
    gw_->runtime = app::Runtime::build(gw_->config, nullptr);
    gw_->access_log = std::make_shared<log::AccessLog>(gw_->config->logging.access_log);
    gw_->worker = std::make_unique<app::Worker>(0, gw_->runtime, gw_->access_log);
    const auto& lc = gw_->config->listeners.at(0);
    auto acceptor = net::bind_acceptor(gw_->worker->io(),
                                       boost::asio::ip::tcp::endpoint(lc.ip, lc.address.port));
    auto listener = std::make_unique<net::Listener>(*gw_->worker, lc.name, std::move(acceptor),
                                                    gw_->config->limits.max_connections);
    listener->start();
    listen_port_ = listener->local_endpoint().port();
    gw_->listener = listener.get();
    // Not Worker::start(): that would run the loop on a thread of its own.
    gw_->worker->add_listener(std::move(listener));
}

std::size_t ExchangeTest::pool_idle() const {
    return gw_->worker->pool().idle_count();
}
std::uint64_t ExchangeTest::pool_evicted() const {
    return gw_->worker->pool().evicted();
}
std::uint64_t ExchangeTest::sessions() const {
    return gw_->worker->sessions();
}

void ExchangeTest::set_server_healthy(std::size_t server, bool healthy) {
    gw_->runtime->upstream(0).servers().at(server)->set_healthy(healthy);
}

std::size_t ExchangeTest::queue_length() const {
    auto* q = gw_->runtime->upstream(0).queue();
    return q ? q->length() : 0;
}

// ---- running ----------------------------------------------------------------

bool ExchangeTest::run_until(const std::function<bool()>& done, std::string_view what) {
    // After one wait gave up, the test has failed: the next ones look once.
    const auto limit = std::chrono::steady_clock::now() + (gave_up_ ? 0s : kSafetyNet);
    for (;;) {
        upstream_.pump();
        for (std::size_t i = 0; i < upstream_.connections(); ++i) upstream_.conn(i).pump();
        for (auto& c : clients_) c->pump();
        if (done()) return true;
        if (std::chrono::steady_clock::now() > limit) {
            ADD_FAILURE() << "gave up (after " << kSafetyNet.count()
                          << " s of real time) waiting for: " << what;
            gave_up_ = true;
            return false;
        }
        if (!gw_) continue;
        auto& io = gw_->worker->io();
        if (io.stopped()) io.restart();
        if (io.poll() > 0) continue;
        // Nothing ready: wait a little for the kernel (a loopback segment,
        // an event) before looking again.
        if (io.stopped()) io.restart();
        io.run_one_for(std::chrono::milliseconds(1));
    }
}

void ExchangeTest::settle() {
    if (!gw_) return;
    auto& io = gw_->worker->io();
    for (int i = 0; i < 100; ++i) {
        if (io.stopped()) io.restart();
        if (io.poll() == 0) break;
    }
    upstream_.pump();
    for (std::size_t i = 0; i < upstream_.connections(); ++i) upstream_.conn(i).pump();
    for (auto& c : clients_) c->pump();
}

void ExchangeTest::advance(util::Clock::duration d) {
    util::Clock::advance(d);
    util::wake_timers(gw_->worker->io());
    settle();
}

Endpoint& ExchangeTest::connect_client(bool wait_session) {
    const auto before = sessions();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = loopback(listen_port_);
    // Blocking: a loopback connect completes in the call (the listener's
    // backlog takes it before the gateway accepts).
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        ADD_FAILURE() << "client connect: " << std::strerror(errno);
    clients_.push_back(std::make_unique<Endpoint>(fd));
    if (wait_session) run_until([&] { return sessions() > before; }, "the client's session");
    return *clients_.back();
}

Endpoint& ExchangeTest::accept_upstream() {
    static Endpoint none(-1);
    const bool got =
        run_until([&] { return upstream_.connections() > accepted_; }, "a new upstream connection");
    if (!got) return none;
    return upstream_.conn(accepted_++);
}

Message ExchangeTest::next_request(Endpoint& e) {
    if (!run_until([&] { return e.has(MessageKind::request); }, "a request upstream")) return {};
    return *e.take(MessageKind::request);
}

Message ExchangeTest::next_response(Endpoint& e, MessageKind kind) {
    if (!run_until([&] { return e.has(kind); }, "a response at the client")) {
        ADD_FAILURE() << "client holds: " << e.input();
        return {};
    }
    return *e.take(kind);
}

bool ExchangeTest::wait_closed(Endpoint& e, std::string_view what) {
    return run_until([&] { return e.closed(); }, what);
}

bool ExchangeTest::wait_kernel(const std::function<bool()>& done, std::string_view what) {
    const auto limit = std::chrono::steady_clock::now() + (gave_up_ ? 0s : kSafetyNet);
    while (!done()) {
        if (std::chrono::steady_clock::now() > limit) {
            ADD_FAILURE() << "gave up waiting for: " << what;
            gave_up_ = true;
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

// ---- kernel-side facts --------------------------------------------------------

int ExchangeTest::gateway_fd(const Endpoint& e) {
    sockaddr_in mine{}, peer{};
    socklen_t len = sizeof mine;
    if (::getsockname(e.fd(), reinterpret_cast<sockaddr*>(&mine), &len) != 0) return -1;
    len = sizeof peer;
    if (::getpeername(e.fd(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) return -1;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        const int fd = std::atoi(entry.path().filename().c_str());
        if (fd == e.fd()) continue;
        sockaddr_in a{}, b{};
        len = sizeof a;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || !same(a, peer))
            continue;
        len = sizeof b;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&b), &len) != 0 || !same(b, mine))
            continue;
        return fd;
    }
    return -1;
}

bool ExchangeTest::tcp_closed(int fd) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
    return info.tcpi_state == TCP_CLOSE;
}

bool ExchangeTest::gateway_read_all(const Endpoint& client) const {
    int unsent = 0;
    if (::ioctl(client.fd(), SIOCOUTQ, &unsent) != 0 || unsent != 0) return false;  // not acked
    const int fd = gateway_fd(client);
    int unread = 0;
    return fd >= 0 && ::ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
}

bool ExchangeTest::wait_gateway_read(const Endpoint& client) {
    const bool read = run_until([&] { return gateway_read_all(client); }, "the gateway's read");
    // A read that took the bytes at once completes by a handler of its own.
    settle();
    return read;
}

// ---- access log ---------------------------------------------------------------

std::vector<std::string> ExchangeTest::access_log() const {
    if (gw_ && gw_->access_log) gw_->access_log->flush();
    std::vector<std::string> lines;
    std::ifstream in(dir_ + "/access.log");
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

long long ExchangeTest::log_number(const std::string& line, std::string_view key) {
    const auto k = "\"" + std::string(key) + "\":";
    const auto p = line.find(k);
    if (p == std::string::npos) return -1;
    const char* s = line.c_str() + p + k.size();
    if (!std::isdigit(static_cast<unsigned char>(*s))) return -1;
    return std::atoll(s);
}

std::string ExchangeTest::log_string(const std::string& line, std::string_view key) {
    const auto k = "\"" + std::string(key) + "\":\"";
    const auto p = line.find(k);
    if (p == std::string::npos) return {};
    const auto start = p + k.size();
    return line.substr(start, line.find('"', start) - start);
}

// ---- checks -----------------------------------------------------------------

void expect_error(const Message& m, unsigned status, std::string_view message, bool close,
                  bool prefix) {
    EXPECT_EQ(m.status, status) << m.raw;
    EXPECT_EQ(m.version, "HTTP/1.1");
    EXPECT_EQ(m.header("Content-Type").value_or(""), "application/json") << m.raw;
    const std::string head = R"({"error":{"message":")" + std::string(message);
    const std::string tail = R"(","type":"gateway_error","code":)" + std::to_string(status) + "}}";
    if (prefix) {
        EXPECT_EQ(m.body.substr(0, head.size()), head) << m.raw;
        EXPECT_TRUE(m.body.size() >= tail.size() &&
                    m.body.compare(m.body.size() - tail.size(), tail.size(), tail) == 0)
            << m.raw;
    } else {
        EXPECT_EQ(m.body, head + tail) << m.raw;
    }
    EXPECT_EQ(m.header("Connection").value_or("") == "close", close) << m.raw;
}

}  // namespace dsgw::test
