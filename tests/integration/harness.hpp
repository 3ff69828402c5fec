#pragma once
// Integration test harness: starts the real deepseek-gateway and
// deepseek-mock-server binaries as child processes on loopback (port 0), and
// talks to them over plain sockets with a small HTTP/1.1 client that shows
// every byte and every recv() (so tests can check chunk-by-chunk delivery,
// connection closes and resets).
//
// Everything here is bounded in time: every wait takes a timeout, and every
// child process is terminated (SIGTERM, then SIGKILL) when its owner is
// destroyed. Children also get PR_SET_PDEATHSIG, so they die with the test
// process even when ctest kills it; for that reason spawn them from the
// test's main thread (the signal fires when the spawning *thread* exits).
//
// Environment: DSGW_IT_ECHO=1 echoes every line the children print to stderr
// as it arrives; on a failed test the tail of the gateway's and the mocks'
// output is printed anyway (DSGW_IT_QUIET=1 turns that off).

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <cerrno>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace dsgw::it {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

std::string gateway_bin();
std::string mock_bin();

// steady_clock as nanoseconds since its epoch: on Linux this is
// CLOCK_MONOTONIC, the clock the mock server reports last_peer_close_ns in.
std::int64_t steady_ns(Clock::time_point t = Clock::now());
double ms_between(Clock::time_point from, Clock::time_point to);

// --------------------------------------------------------------------------
// Child processes

class Process {
public:
    enum class Stream { out, err, any };

    Process() = default;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    // fork/exec `exe` with `args` (not including argv[0]); stdin is /dev/null,
    // stdout and stderr are captured line by line. `name` prefixes the echoed
    // lines when DSGW_IT_ECHO=1 is set in the environment.
    bool start(const std::string& exe, const std::vector<std::string>& args,
               const std::string& name = "");

    pid_t pid() const { return pid_; }
    const std::string& name() const { return name_; }

    // Waits until a line (already seen or arriving later) matches `re`.
    // Returns the match groups (index 0 = whole match) or nothing after
    // `timeout` or when the stream reached end of file without a match.
    std::optional<std::vector<std::string>> wait_for_line(const std::regex& re,
                                                          milliseconds timeout,
                                                          Stream which = Stream::any);
    // Waits until both output pipes reached end of file (the child exited).
    bool wait_output_closed(milliseconds timeout);
    std::vector<std::string> lines(Stream which) const;
    std::string text(Stream which) const;
    // Last `n` lines of both streams, for failure messages.
    std::string tail(std::size_t n = 40) const;

    bool signal(int sig);
    // Exit code, 128+signal if killed by a signal, nothing on timeout.
    std::optional<int> wait_exit(milliseconds timeout);
    bool exited();
    // SIGTERM, wait `grace`, then SIGKILL. Returns the exit status if known.
    std::optional<int> stop(milliseconds grace = 5s);

private:
    void reader_loop(int out_fd, int err_fd);
    bool reap(bool block);

    pid_t pid_ = -1;
    std::string name_;
    std::thread reader_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> out_lines_, err_lines_;
    std::vector<std::pair<Stream, std::string>> all_lines_;
    bool out_eof_ = false, err_eof_ = false;
    std::mutex reap_mu_;
    std::optional<int> exit_status_;
    bool echo_ = false;
    std::atomic<bool> stop_reader_{false};
};

// Runs a command to completion (with a timeout) and returns its exit status
// and captured output.
struct RunResult {
    std::optional<int> exit_code;
    std::vector<std::string> out, err;
    std::string err_text() const;
};
RunResult run_command(const std::string& exe, const std::vector<std::string>& args,
                      milliseconds timeout = 20s);

// --------------------------------------------------------------------------
// Minimal JSON (enough for mock stats, echo bodies, access log lines).

struct Json {
    enum class Type { null, boolean, number, string, array, object } type = Type::null;
    bool b = false;
    std::string str;  // string value, or the literal text of a number
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;

    const Json* get(std::string_view key) const;
    std::int64_t as_int(std::int64_t fallback = -1) const;
    std::uint64_t as_uint(std::uint64_t fallback = 0) const;
    double as_double(double fallback = 0) const;
    bool is_string() const { return type == Type::string; }
};
std::optional<Json> parse_json(std::string_view text);

// --------------------------------------------------------------------------
// HTTP client over raw sockets

struct Response {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;                 // decoded (de-chunked)
    std::vector<std::string> chunks;  // chunk payloads in order, when chunked
    bool chunked = false;
    bool close_delimited = false;

    std::optional<std::string> header(std::string_view name) const;  // first, case-insensitive
    std::size_t header_count(std::string_view name) const;
    std::optional<Json> json() const { return parse_json(body); }
};

// Incremental response parser: feed bytes as they arrive.
class ResponseParser {
public:
    explicit ResponseParser(bool head_request = false) : head_request_(head_request) {}
    // Consumes bytes; returns how many were used (stops at the end of the message).
    std::size_t feed(std::string_view data);
    void feed_eof();
    bool head_done() const { return state_ > State::head; }
    bool done() const { return state_ == State::done; }
    bool failed() const { return state_ == State::error; }
    const std::string& error() const { return error_; }
    Response& response() { return resp_; }

private:
    enum class State {
        head,
        length_body,
        chunk_size,
        chunk_data,
        chunk_crlf,
        trailers,
        until_close,
        done,
        error
    };
    bool parse_head(std::string_view head);
    void fail(std::string why);

    bool head_request_;
    State state_ = State::head;
    std::string pending_;  // partial head / chunk-size line / trailer line
    std::uint64_t remaining_ = 0;
    Response resp_;
    std::string error_;
};

// One server-sent event as received by the client.
struct SseEvent {
    std::string data;            // concatenated "data:" lines
    Clock::time_point at;        // time of the recv() that completed it
    std::size_t recv_index = 0;  // which recv() completed it
};

struct RecvRecord {
    Clock::time_point at;
    std::size_t bytes = 0;
};

// Reads one (possibly streamed) response and records every recv().
struct StreamResult {
    bool ok = false;
    std::string error;
    Response response;
    Clock::time_point sent_at{}, head_at{}, done_at{};
    std::vector<RecvRecord> recvs;
    std::vector<SseEvent> events;
    // Events whose data is not "[DONE]".
    std::vector<const SseEvent*> token_events() const;
    bool saw_done() const;
};

// Feeds bytes into a ResponseParser and splits the body into SSE events.
class StreamReader {
public:
    explicit StreamReader(Clock::time_point sent_at) { result_.sent_at = sent_at; }
    // Returns true when the response is complete (or failed).
    bool on_data(std::string_view data, Clock::time_point at);
    bool on_eof(Clock::time_point at);
    StreamResult& result() { return result_; }
    bool finished() const { return parser_.done() || parser_.failed(); }

private:
    void scan_events(Clock::time_point at);
    ResponseParser parser_;
    StreamResult result_;
    std::size_t sse_pos_ = 0;
};

class Conn {
public:
    Conn() = default;
    Conn(Conn&& o) noexcept;
    Conn& operator=(Conn&& o) noexcept;
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn();

    // Connects to host:port (IPv4 or IPv6 literal), optionally binding the
    // source address first (e.g. "127.0.0.2").
    bool connect(std::uint16_t port, const std::string& host = "127.0.0.1",
                 const std::string& source = "", milliseconds timeout = 5s);
    bool is_open() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    int last_errno() const { return err_; }

    bool send_all(std::string_view data);
    // One recv() with a deadline: >0 bytes appended to `out`, 0 end of file,
    // -1 error (last_errno()), -2 timeout.
    long recv_some(std::string& out, milliseconds timeout, std::size_t max = 65536);
    // For the shared reading loops (harness_read.hpp).
    std::string& pending_bytes() { return buf_; }
    std::string recv_error() const;
    bool recv_was_reset() const { return err_ == ECONNRESET; }

    // Reads one full response (bytes left over stay buffered for the next).
    std::optional<Response> read_response(milliseconds timeout = 10s, bool head_request = false,
                                          std::string* error = nullptr);
    // Reads one response recording every recv() and SSE event.
    StreamResult read_stream(Clock::time_point sent_at, milliseconds timeout = 30s);
    // Feeds `reader` until the response is complete, or it holds at least
    // `until_events` SSE events, or the timeout / an error / end of file.
    // Returns true when the stop condition (complete or enough events) was met.
    bool read_into(StreamReader& reader, milliseconds timeout,
                   std::size_t until_events = static_cast<std::size_t>(-1));

    struct CloseResult {
        bool closed = false;     // EOF or reset seen
        bool reset = false;      // ECONNRESET
        bool timed_out = false;  // still open after the timeout
        std::string data;        // bytes received before the close
    };
    // Waits for the peer to close the connection.
    CloseResult wait_close(milliseconds timeout);

    void shutdown_write();
    void close();
    void close_with_reset();  // SO_LINGER 0: the peer sees RST

private:
    int fd_ = -1;
    int err_ = 0;
    std::string buf_;  // received but not consumed
};

// Request text helpers.
std::string http_request(const std::string& method, const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& body = "", const std::string& version = "HTTP/1.1",
                         const std::string& host = "gateway.test");
std::string chat_body(bool stream);
// POST /v1/chat/completions with "stream": true and mock overrides.
std::string stream_request(int tokens, int token_delay_ms, int first_token_delay_ms = 0,
                           const std::vector<std::pair<std::string, std::string>>& extra = {});

// Connect, send, read one response, close.
std::optional<Response> request_once(std::uint16_t port, const std::string& raw,
                                     const std::string& source = "", milliseconds timeout = 10s,
                                     std::string* error = nullptr,
                                     const std::string& host = "127.0.0.1");

// Opens `n` connections, then sends `raw` on each (request i at
// i * ramp / n after the first; all at once when ramp is 0) and reads all
// responses concurrently with one poll() loop, timestamping each recv.
std::vector<StreamResult> run_concurrent_streams(std::uint16_t port, int n, const std::string& raw,
                                                 milliseconds timeout = 60s,
                                                 milliseconds ramp = 0ms);
// Same, stream i going to ports[i] (to measure two paths under the same load).
std::vector<StreamResult> run_concurrent_streams(const std::vector<std::uint16_t>& ports,
                                                 const std::string& raw, milliseconds timeout = 60s,
                                                 milliseconds ramp = 0ms);

// Percentile (0..100) of a sample, nearest-rank.
double percentile(std::vector<double> v, double p);
inline double median(std::vector<double> v) {
    return percentile(std::move(v), 50);
}

// ASCII lower case (header names).
std::string to_lower(std::string_view s);

// FNV-1a 64 of a byte string.
std::uint64_t fnv1a64(std::string_view data);

// A TCP socket bound on 127.0.0.1 to an ephemeral port and *not* listening:
// connects to it are refused, and no one else can take the port while it lives.
class ClosedPort {
public:
    ClosedPort();
    ~ClosedPort();
    ClosedPort(const ClosedPort&) = delete;
    ClosedPort& operator=(const ClosedPort&) = delete;
    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// A listening socket on 127.0.0.1 (never accepts): its port is "in use".
class BusyPort {
public:
    BusyPort();
    ~BusyPort();
    BusyPort(const BusyPort&) = delete;
    BusyPort& operator=(const BusyPort&) = delete;
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// --------------------------------------------------------------------------
// Mock inference server

// GET /mock/stats. The harness reads stats over one keep-alive connection of
// its own; connections_accepted and connections_open leave it out, so they
// count only the connections other clients (the gateway) made.
struct MockStats {
    std::string id;
    std::int64_t connections_accepted = -1;
    std::int64_t connections_open = -1;
    std::int64_t requests = -1;
    std::int64_t in_flight = -1;
    std::int64_t max_in_flight = -1;
    std::int64_t streams_cancelled = -1;
    std::int64_t last_peer_close_ns = 0;
    std::vector<std::string> request_ids;
    // The "model" of the last completion request (decoded); none when it
    // named none, or none came since the last reset.
    std::optional<std::string> last_model;
    std::string raw;
};

class MockServer {
public:
    // Starts `deepseek-mock-server --listen 127.0.0.1:0 --id ID --quiet ARGS...`
    // and waits for its "listening on" line. Check ok(). A `--listen` in
    // ARGS wins (e.g. "127.0.0.2:0": any 127.0.0.0/8 address works).
    explicit MockServer(std::string id, std::vector<std::string> args = {});
    ~MockServer();

    bool ok() const { return port_ != 0; }
    std::uint16_t port() const { return port_; }
    const std::string& host() const { return host_; }
    std::string address() const { return host_ + ":" + std::to_string(port_); }
    const std::string& id() const { return id_; }
    Process& process() { return proc_; }

    std::optional<MockStats> stats();
    bool reset();
    // Polls stats() until pred(stats) holds or the timeout passes; returns the
    // last stats read.
    template <class Pred>
    std::optional<MockStats> wait_stats(Pred pred, milliseconds timeout = 5s) {
        auto deadline = Clock::now() + timeout;
        std::optional<MockStats> s;
        for (;;) {
            s = stats();
            if ((s && pred(*s)) || Clock::now() >= deadline) return s;
            std::this_thread::sleep_for(10ms);
        }
    }

private:
    std::optional<Response> control(const std::string& raw);

    std::string id_;
    Process proc_;
    std::string host_ = "127.0.0.1";
    std::uint16_t port_ = 0;
    std::mutex control_mu_;
    Conn control_;  // keep-alive connection for stats/reset
    std::int64_t own_connections_ = 0;
};

std::vector<std::unique_ptr<MockServer>> start_mocks(int n,
                                                     const std::vector<std::string>& args = {},
                                                     const std::string& prefix = "m");

// --------------------------------------------------------------------------
// Gateway

// Builds a gateway YAML config (SPEC §3). Empty strings / negative numbers
// mean "leave the key out" (use the gateway's default).
struct GatewayConfig {
    struct Listener {
        std::string name = "main";
        std::string address = "127.0.0.1:0";
        std::vector<std::string> allow = {"127.0.0.0/8"};
        std::vector<std::string> deny;
        std::string on_deny;
        std::string upstream = "pool";
    };
    struct Server {
        std::string address;
        int weight = -1;
    };
    struct Upstream {
        std::string name = "pool";
        std::string balancer = "round_robin";
        std::vector<Server> servers;
        int keepalive = -1;
        int retries = -1;
        std::string connect_timeout = "2s";
        std::string first_byte_timeout = "30s";
        std::string idle_timeout = "30s";
        std::string slow_start, resolve_interval;
        // Flow mappings written as is, e.g. "{block_bytes: 64}" (SPEC §9).
        std::string prefix_affinity, load_metrics;
    };

    std::string workers = "2";
    std::vector<Listener> listeners = {Listener{}};
    std::vector<Upstream> upstreams = {Upstream{}};
    std::string max_header_bytes, max_request_body, header_timeout, client_idle;
    std::string shutdown_timeout = "5s";
    std::string log_level = "info";
    std::string access_log = "stdout";

    Upstream& upstream() { return upstreams.front(); }
    Listener& listener() { return listeners.front(); }
    std::string yaml() const;
};

// One listener "main" on 127.0.0.1:0 allowing 127.0.0.0/8, one upstream
// "pool" with the given servers.
GatewayConfig basic_config(const std::vector<std::string>& servers,
                           const std::string& balancer = "round_robin");
GatewayConfig basic_config(const std::vector<std::unique_ptr<MockServer>>& mocks,
                           const std::string& balancer = "round_robin");

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string write(const std::string& name, const std::string& content) const;

private:
    std::string path_;
};

class Gateway {
public:
    Gateway() = default;
    ~Gateway();

    // Writes the config, starts `deepseek-gateway --config FILE`, waits for
    // "gateway ready" and records each listener's port.
    bool start(const std::string& yaml, milliseconds timeout = 20s);
    bool start(const GatewayConfig& cfg, milliseconds timeout = 20s) {
        return start(cfg.yaml(), timeout);
    }

    // Runs the gateway as `launcher... GATEWAY --config FILE` (e.g. inside
    // `unshare`); set before start(). launcher[0] is an absolute path, and
    // the launcher must exec the command so that signals reach the gateway.
    void set_launcher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }

    std::uint16_t port(const std::string& listener = "main") const;
    Process& process() { return proc_; }
    const std::string& config_path() const { return config_path_; }
    const TempDir& dir() const { return dir_; }
    std::string logs() const { return proc_.tail(60); }

    // SIGTERM and wait for the exit status.
    std::optional<int> stop(milliseconds timeout = 15s);

private:
    TempDir dir_;
    std::string config_path_;
    Process proc_;
    std::vector<std::string> launcher_;
    std::map<std::string, std::uint16_t> ports_;
    bool started_ = false;
};

}  // namespace dsgw::it
