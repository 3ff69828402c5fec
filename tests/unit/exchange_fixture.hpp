#pragma once
// The bench of the exchange tests (issue 16): a real gateway worker (listener,
// session, upstream pool) whose event loop the test thread runs, a scripted
// upstream and clients as plain loopback sockets the test reads and writes
// step by step, and the fake clock (util/clock.hpp) for every timeout. No
// processes, no threads, no sleeps: real time only bounds a wait that would
// otherwise hang (run_until), it never decides an outcome.

#include <gtest/gtest.h>

#include "deepseek_gateway/util/clock.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsgw::app {
class Worker;
}
namespace dsgw::net {
class Listener;
}

namespace dsgw::test {

// One HTTP/1 message as the test saw it on a socket.
struct Message {
    unsigned status = 0;  // responses
    std::string reason;
    std::string method;  // requests
    std::string target;
    std::string version;  // "HTTP/1.1"
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  // chunked: decoded
    std::string raw;   // the message's bytes exactly
    bool chunked = false;

    // The first field named `name` (case-insensitive), or nothing.
    std::optional<std::string> header(std::string_view name) const;
    std::size_t count(std::string_view name) const;
};

enum class MessageKind { request, response, response_to_head };

// Parses one complete message at the front of `buf`. Nothing when it is not
// complete yet (a close-delimited body is complete at `eof`). `bad` is set
// when the bytes are no HTTP message.
std::optional<Message> parse_message(std::string_view buf, MessageKind kind, bool eof,
                                     bool* bad = nullptr);

// One end of a loopback TCP connection, non-blocking, that the test drives.
class Endpoint {
public:
    explicit Endpoint(int fd);
    ~Endpoint();
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    int fd() const { return fd_; }
    // Writes all of `bytes` (a loopback socket buffer takes a test's
    // messages at once); a short write fails the test.
    void send(std::string_view bytes);
    // Reads what has arrived into the input buffer; notes EOF or a reset.
    void pump();
    // Bytes read and not taken yet.
    const std::string& input() const { return in_; }
    // The next complete message in the input, taken from it; or nothing.
    std::optional<Message> take(MessageKind kind);
    bool has(MessageKind kind) const;
    // The peer closed (EOF) or reset the connection.
    bool closed() const { return eof_ || reset_; }
    bool was_reset() const { return reset_; }
    // FIN after what was sent.
    void close();
    // RST: SO_LINGER 0, then close.
    void reset();

private:
    int fd_;
    std::string in_;
    bool eof_ = false;
    bool reset_ = false;
};

// The upstream server of the tests: a listening socket the test accepts from
// by hand, so it sees exactly which connection got which bytes.
class ScriptedUpstream {
public:
    ScriptedUpstream();
    ~ScriptedUpstream();
    std::string address() const;  // "127.0.0.1:PORT"
    // Accepts what is waiting.
    void pump();
    std::size_t connections() const { return conns_.size(); }
    Endpoint& conn(std::size_t i) { return *conns_.at(i); }

private:
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::vector<std::unique_ptr<Endpoint>> conns_;
};

// What the test configuration varies. Every timeout differs from the others,
// so a test can tell which one fired.
struct GatewayOptions {
    std::string allow = "[127.0.0.0/8]";
    std::string on_deny = "close";
    std::string auth{};  // YAML for listeners[0].auth, e.g. "{api_keys_file: F}"
    // The servers' addresses; empty: the scripted upstream.
    std::vector<std::string> servers{};
    unsigned retries = 1;
    std::string connect_timeout = "5s";
    std::string first_byte_timeout = "60s";
    std::string idle_timeout = "30s";
    unsigned max_in_flight = 0;
    std::string queue = "{size: 1, timeout: 40s}";
    std::string header_timeout = "10s";
    std::string client_idle = "20s";
    std::string max_header_bytes = "16KiB";
    std::string max_request_body = "32MiB";
    // YAML for listeners[0].routes (to upstream "up"), e.g.
    // "[{match: {model: m}, upstream: up}]"; empty: none.
    std::string routes{};
    bool default_upstream = true;  // listeners[0].upstream: up (optional with routes)
};

class ExchangeTest : public ::testing::Test {
protected:
    ExchangeTest();
    ~ExchangeTest() override;

    // Loads the configuration and starts the gateway: a worker (not started:
    // this thread runs its event loop) with one listener on 127.0.0.1:0.
    void start(const GatewayOptions& options = {});
    std::string config_yaml(const GatewayOptions& options) const;

    // Runs the worker's ready handlers and pumps every test socket until
    // `done` holds. After some real seconds it fails the test (`what` says
    // what was awaited) instead of hanging; nothing else depends on time.
    bool run_until(const std::function<bool()>& done, std::string_view what);
    // Runs what is ready now, without waiting.
    void settle();
    // Moves the fake clock and wakes the worker's timers; the handlers now
    // due run.
    void advance(util::Clock::duration d);

    // A client connected to the listener, once its session has started
    // (`wait_session` false: only connected).
    Endpoint& connect_client(bool wait_session = true);
    // The next upstream connection the gateway opens.
    Endpoint& accept_upstream();
    // The next complete message on `e` (a failure and an empty message when
    // none comes).
    Message next_request(Endpoint& e);
    Message next_response(Endpoint& e, MessageKind kind = MessageKind::response);
    // Waits until `e` sees the peer close.
    bool wait_closed(Endpoint& e, std::string_view what);

    // Kernel-side facts about the gateway's end of a test connection.
    // Its socket, found among this process's (the gateway runs here), or -1.
    static int gateway_fd(const Endpoint& e);
    // The connection of `fd` is closed in the kernel (it took a reset).
    static bool tcp_closed(int fd);
    // Everything the client sent has been read by the gateway.
    bool gateway_read_all(const Endpoint& client) const;
    // Runs the gateway until it has read and handled all the client sent:
    // a clock advance after it finds the session waiting for more.
    bool wait_gateway_read(const Endpoint& client);
    // Spins (without running the event loop) until `done`, bounded like
    // run_until.
    bool wait_kernel(const std::function<bool()>& done, std::string_view what);

    // The access log's lines so far.
    std::vector<std::string> access_log() const;
    // A number field of an access-log line ("status", "bytes_out"), or -1.
    static long long log_number(const std::string& line, std::string_view key);
    static std::string log_string(const std::string& line, std::string_view key);

    // The worker's pool: idle connections, evictions.
    std::size_t pool_idle() const;
    std::uint64_t pool_evicted() const;
    std::uint64_t sessions() const;
    // The scripted server's state, as active health checks would set it.
    void set_server_healthy(std::size_t server, bool healthy);
    // Requests waiting in the upstream's admission queue.
    std::size_t queue_length() const;

    ScriptedUpstream upstream_;
    // An address where nothing listens: connecting to it is refused. The
    // port stays bound (not listening) so no one else takes it.
    std::string refused_address_;
    std::string dir_;  // temporary files (access log, API keys)

private:
    struct Gateway;
    std::unique_ptr<Gateway> gw_;
    int refused_fd_ = -1;
    std::uint16_t listen_port_ = 0;
    std::vector<std::unique_ptr<Endpoint>> clients_;
    std::size_t accepted_ = 0;  // upstream connections handed out
    bool gave_up_ = false;      // a wait hit the safety net
};

// Checks a local reply: status, the OpenAI error JSON shape with `message`
// (a prefix of it when `prefix`), and whether it says Connection: close.
void expect_error(const Message& m, unsigned status, std::string_view message, bool close,
                  bool prefix = false);

}  // namespace dsgw::test
