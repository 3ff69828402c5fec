// Child processes, the mock server, the gateway and its config (see harness.hpp).
// The HTTP client and the JSON reader live in harness_http.cpp.

#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace dsgw::it {

std::string gateway_bin() {
    return DSGW_GATEWAY_BIN;
}
std::string mock_bin() {
    return DSGW_MOCK_BIN;
}

std::int64_t steady_ns(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

double ms_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// ---------------------------------------------------------------- Process

namespace {

// In the sanitized build (scripts/test.sh, build-asan) the gateway and the
// mock servers are sanitized too, and they report on their stderr, which only
// this harness reads: a finding there (a leak at exit, say, or one that
// aborts the process after the test has its answers) would otherwise fail no
// assertion. Any such report fails the running test, with the report.
void report_sanitizer_findings(const Process& p) {
    const auto lines = p.lines(Process::Stream::any);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        if (line.find("ERROR: AddressSanitizer") == std::string::npos &&
            line.find("ERROR: LeakSanitizer") == std::string::npos &&
            line.find(" runtime error: ") == std::string::npos)  // UBSan
            continue;
        std::string report;
        for (std::size_t j = i; j < lines.size() && j < i + 80; ++j)
            report += "  " + lines[j] + "\n";
        ADD_FAILURE() << p.name() << " (pid " << p.pid() << ") reported a sanitizer finding:\n"
                      << report;
        return;
    }
}

}  // namespace

Process::~Process() {
    if (pid_ > 0) stop(3s);
    if (reader_.joinable()) {
        // Output pipes close when the child is gone; give the reader a moment
        // to drain them, then stop it regardless (a stray grandchild could
        // hold them open).
        wait_output_closed(2s);
        stop_reader_ = true;
        reader_.join();
    }
    report_sanitizer_findings(*this);
}

bool Process::start(const std::string& exe, const std::vector<std::string>& args,
                    const std::string& name) {
    name_ = name.empty() ? exe : name;
    const char* echo = std::getenv("DSGW_IT_ECHO");
    echo_ = echo != nullptr && std::string(echo) == "1";

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return false;
    if (pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        return false;
    }
    // Everything the child needs is prepared before fork(): after it, only
    // async-signal-safe calls.
    std::vector<std::string> argv_store;
    argv_store.push_back(exe);
    argv_store.insert(argv_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
        for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
        return false;
    }
    if (pid == 0) {
        // Own process group, so that stop() also reaches anything it forks.
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        syscall(SYS_close_range, 3u, ~0u, 0u);
        struct sigaction sa {};
        sa.sa_handler = SIG_DFL;
        for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaction(s, &sa, nullptr);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    pid_ = pid;
    ::close(out[1]);
    ::close(err[1]);
    reader_ = std::thread([this, o = out[0], e = err[0]] { reader_loop(o, e); });
    return true;
}

void Process::reader_loop(int out_fd, int err_fd) {
    std::string partial[2];
    int fds[2] = {out_fd, err_fd};
    bool open[2] = {true, true};
    auto push = [&](int i, std::string line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (echo_) std::cerr << "[" << name_ << (i == 0 ? " out] " : " err] ") << line << "\n";
        std::lock_guard lk(mu_);
        (i == 0 ? out_lines_ : err_lines_).push_back(line);
        all_lines_.emplace_back(i == 0 ? Stream::out : Stream::err, std::move(line));
    };
    while ((open[0] || open[1]) && !stop_reader_) {
        pollfd p[2];
        int n = 0, idx[2];
        for (int i = 0; i < 2; ++i)
            if (open[i]) {
                p[n] = pollfd{fds[i], POLLIN, 0};
                idx[n++] = i;
            }
        int r = poll(p, n, 100);
        if (r < 0 && errno != EINTR) break;
        for (int k = 0; k < n && r > 0; ++k) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int i = idx[k];
            char buf[8192];
            ssize_t got = read(fds[i], buf, sizeof buf);
            if (got > 0) {
                partial[i].append(buf, static_cast<std::size_t>(got));
                std::size_t pos;
                while ((pos = partial[i].find('\n')) != std::string::npos) {
                    push(i, partial[i].substr(0, pos));
                    partial[i].erase(0, pos + 1);
                }
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (!partial[i].empty()) push(i, std::move(partial[i]));
                partial[i].clear();
                open[i] = false;
                ::close(fds[i]);
                std::lock_guard lk(mu_);
                (i == 0 ? out_eof_ : err_eof_) = true;
            }
        }
        cv_.notify_all();
    }
    for (int i = 0; i < 2; ++i)
        if (open[i]) ::close(fds[i]);
    {
        std::lock_guard lk(mu_);
        out_eof_ = err_eof_ = true;
    }
    cv_.notify_all();
}

std::optional<std::vector<std::string>> Process::wait_for_line(const std::regex& re,
                                                               milliseconds timeout, Stream which) {
    auto deadline = Clock::now() + timeout;
    std::unique_lock lk(mu_);
    std::size_t checked = 0;
    for (;;) {
        for (; checked < all_lines_.size(); ++checked) {
            const auto& [s, line] = all_lines_[checked];
            if (which != Stream::any && s != which) continue;
            std::smatch m;
            if (std::regex_search(line, m, re)) {
                std::vector<std::string> groups;
                for (const auto& g : m) groups.push_back(g.str());
                return groups;
            }
        }
        bool eof = which == Stream::out   ? out_eof_
                   : which == Stream::err ? err_eof_
                                          : (out_eof_ && err_eof_);
        if (eof || Clock::now() >= deadline) return std::nullopt;
        cv_.wait_until(lk, deadline);
    }
}

bool Process::wait_output_closed(milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return out_eof_ && err_eof_; });
}

std::vector<std::string> Process::lines(Stream which) const {
    std::lock_guard lk(mu_);
    if (which == Stream::out) return out_lines_;
    if (which == Stream::err) return err_lines_;
    std::vector<std::string> all;
    for (const auto& [s, l] : all_lines_) all.push_back(l);
    return all;
}

std::string Process::text(Stream which) const {
    std::string t;
    for (const auto& l : lines(which)) t += l + "\n";
    return t;
}

std::string Process::tail(std::size_t n) const {
    std::lock_guard lk(mu_);
    std::string t;
    std::size_t from = all_lines_.size() > n ? all_lines_.size() - n : 0;
    for (std::size_t i = from; i < all_lines_.size(); ++i)
        t += (all_lines_[i].first == Stream::out ? "  out| " : "  err| ") + all_lines_[i].second +
             "\n";
    return t;
}

bool Process::reap(bool block) {
    std::lock_guard lk(reap_mu_);
    if (exit_status_) return true;
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != pid_) return false;
    if (WIFEXITED(status))
        exit_status_ = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        exit_status_ = 128 + WTERMSIG(status);
    else
        exit_status_ = -1;
    return true;
}

bool Process::exited() {
    return reap(false);
}

bool Process::signal(int sig) {
    if (pid_ <= 0 || exited()) return false;
    return ::kill(pid_, sig) == 0;
}

std::optional<int> Process::wait_exit(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!reap(false)) {
        if (pid_ <= 0 || Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
    std::lock_guard lk(reap_mu_);
    return exit_status_;
}

std::optional<int> Process::stop(milliseconds grace) {
    if (pid_ <= 0) return std::nullopt;
    if (!exited()) {
        ::kill(pid_, SIGTERM);
        if (!wait_exit(grace)) {
            // The whole process group: the child and anything it forked. The
            // unreaped child still holds the id, so it cannot name another group.
            ::kill(-pid_, SIGKILL);
            ::kill(pid_, SIGKILL);
            reap(true);
        }
    }
    std::lock_guard lk(reap_mu_);
    return exit_status_;
}

std::string RunResult::err_text() const {
    std::string t;
    for (const auto& l : err) t += l + "\n";
    return t;
}

RunResult run_command(const std::string& exe, const std::vector<std::string>& args,
                      milliseconds timeout) {
    RunResult r;
    {
        Process p;
        if (!p.start(exe, args, "cmd")) return r;
        r.exit_code = p.wait_exit(timeout);
        if (!r.exit_code) p.stop(1s);
        // Let the reader drain the pipes (they close when the child exits).
        p.wait_output_closed(2s);
        r.out = p.lines(Process::Stream::out);
        r.err = p.lines(Process::Stream::err);
    }
    return r;
}

// ---------------------------------------------------------------- TempDir

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/dsgw-it-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << content;
    return p;
}

// ---------------------------------------------------------------- MockServer

MockServer::MockServer(std::string id, std::vector<std::string> args) : id_(std::move(id)) {
    std::vector<std::string> argv = {"--listen", "127.0.0.1:0", "--id", id_, "--quiet"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!proc_.start(mock_bin(), argv, "mock " + id_)) return;
    static const std::regex re(R"(listening on (\d+\.\d+\.\d+\.\d+):(\d+))");
    if (auto m = proc_.wait_for_line(re, 10s, Process::Stream::out)) {
        host_ = (*m)[1];
        port_ = static_cast<std::uint16_t>(std::stoi((*m)[2]));
    }
}

MockServer::~MockServer() {
    if (::testing::Test::HasFailure() && std::getenv("DSGW_IT_QUIET") == nullptr) {
        std::string t = proc_.tail(10);
        if (!t.empty()) std::cerr << "--- mock " << id_ << " output (tail):\n" << t;
    }
    proc_.stop(3s);
}

std::optional<Response> MockServer::control(const std::string& raw) {
    std::lock_guard lk(control_mu_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!control_.is_open()) {
            if (!control_.connect(port_, host_)) return std::nullopt;
            ++own_connections_;
        }
        if (control_.send_all(raw)) {
            if (auto r = control_.read_response(5s)) {
                auto conn = r->header("Connection");
                if (conn && conn->find("close") != std::string::npos) control_.close();
                return r;
            }
        }
        control_.close();
    }
    return std::nullopt;
}

std::optional<MockStats> MockServer::stats() {
    auto r = control(http_request("GET", "/mock/stats"));
    if (!r || r->status != 200) return std::nullopt;
    auto j = r->json();
    if (!j) return std::nullopt;
    MockStats s;
    s.raw = r->body;
    auto num = [&](const char* k) {
        const Json* v = j->get(k);
        return v ? v->as_int(-1) : -1;
    };
    if (const Json* v = j->get("id")) s.id = v->str;
    {
        std::lock_guard lk(control_mu_);
        s.connections_accepted = num("connections_accepted") - own_connections_;
        s.connections_open = num("connections_open") - (control_.is_open() ? 1 : 0);
    }
    s.requests = num("requests");
    s.in_flight = num("in_flight");
    s.max_in_flight = num("max_in_flight");
    s.streams_cancelled = num("streams_cancelled");
    s.last_peer_close_ns = num("last_peer_close_ns");
    if (const Json* v = j->get("request_ids"))
        for (const auto& e : v->arr) s.request_ids.push_back(e.str);
    if (const Json* v = j->get("last_model"); v && v->is_string()) s.last_model = v->str;
    return s;
}

bool MockServer::reset() {
    auto r = control(http_request("POST", "/mock/reset", {}, ""));
    if (!r || r->status / 100 != 2) return false;
    std::lock_guard lk(control_mu_);
    own_connections_ = 0;  // connections_accepted restarts from zero
    return true;
}

std::vector<std::unique_ptr<MockServer>> start_mocks(int n, const std::vector<std::string>& args,
                                                     const std::string& prefix) {
    std::vector<std::unique_ptr<MockServer>> v;
    for (int i = 0; i < n; ++i)
        v.push_back(std::make_unique<MockServer>(prefix + std::to_string(i), args));
    return v;
}

// ---------------------------------------------------------------- config

namespace {
std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}
std::string list(const std::vector<std::string>& v) {
    std::string t = "[";
    for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + quoted(v[i]);
    return t + "]";
}
}  // namespace

std::string GatewayConfig::yaml() const {
    std::ostringstream y;
    y << "workers: " << workers << "\n";
    // Any free port: tests run in parallel, and 127.0.0.1:9100 is the default.
    y << "admin:\n  address: 127.0.0.1:0\n";
    y << "listeners:\n";
    for (const auto& l : listeners) {
        y << "  - name: " << l.name << "\n";
        y << "    address: " << quoted(l.address) << "\n";
        y << "    access:\n";
        y << "      allow: " << list(l.allow) << "\n";
        if (!l.deny.empty()) y << "      deny: " << list(l.deny) << "\n";
        if (!l.on_deny.empty()) y << "      on_deny: " << l.on_deny << "\n";
        y << "    upstream: " << l.upstream << "\n";
    }
    y << "upstreams:\n";
    for (const auto& u : upstreams) {
        y << "  - name: " << u.name << "\n";
        y << "    balancer: " << u.balancer << "\n";
        y << "    servers:\n";
        for (const auto& s : u.servers) {
            y << "      - address: " << quoted(s.address) << "\n";
            if (s.weight >= 0) y << "        weight: " << s.weight << "\n";
        }
        if (u.keepalive >= 0) y << "    keepalive: " << u.keepalive << "\n";
        if (u.retries >= 0) y << "    retries: " << u.retries << "\n";
        y << "    timeouts:\n";
        if (!u.connect_timeout.empty()) y << "      connect: " << u.connect_timeout << "\n";
        if (!u.first_byte_timeout.empty())
            y << "      first_byte: " << u.first_byte_timeout << "\n";
        if (!u.idle_timeout.empty()) y << "      idle: " << u.idle_timeout << "\n";
        if (!u.slow_start.empty()) y << "    slow_start: " << u.slow_start << "\n";
        if (!u.resolve_interval.empty())
            y << "    resolve_interval: " << u.resolve_interval << "\n";
        if (!u.prefix_affinity.empty()) y << "    prefix_affinity: " << u.prefix_affinity << "\n";
        if (!u.load_metrics.empty()) y << "    load_metrics: " << u.load_metrics << "\n";
    }
    if (!max_header_bytes.empty() || !max_request_body.empty() || !header_timeout.empty() ||
        !client_idle.empty()) {
        y << "limits:\n";
        if (!max_header_bytes.empty()) y << "  max_header_bytes: " << max_header_bytes << "\n";
        if (!max_request_body.empty()) y << "  max_request_body: " << max_request_body << "\n";
        if (!header_timeout.empty()) y << "  header_timeout: " << header_timeout << "\n";
        if (!client_idle.empty()) y << "  client_idle: " << client_idle << "\n";
    }
    y << "logging:\n  level: " << log_level << "\n  access_log: " << access_log
      << "\n  format: text\n";
    if (!shutdown_timeout.empty()) y << "shutdown_timeout: " << shutdown_timeout << "\n";
    return y.str();
}

GatewayConfig basic_config(const std::vector<std::string>& servers, const std::string& balancer) {
    GatewayConfig c;
    c.upstream().balancer = balancer;
    for (const auto& s : servers) c.upstream().servers.push_back({s, -1});
    return c;
}

GatewayConfig basic_config(const std::vector<std::unique_ptr<MockServer>>& mocks,
                           const std::string& balancer) {
    std::vector<std::string> addrs;
    for (const auto& m : mocks) addrs.push_back(m->address());
    return basic_config(addrs, balancer);
}

// ---------------------------------------------------------------- Gateway

Gateway::~Gateway() {
    if (started_ && ::testing::Test::HasFailure() && std::getenv("DSGW_IT_QUIET") == nullptr)
        std::cerr << "--- gateway output (tail):\n" << proc_.tail(40);
    proc_.stop(5s);
}

bool Gateway::start(const std::string& yaml, milliseconds timeout) {
    if (dir_.path().empty()) return false;
    config_path_ = dir_.write("gateway.yaml", yaml);
    std::vector<std::string> argv = launcher_;
    argv.insert(argv.end(), {gateway_bin(), "--config", config_path_});
    const std::string exe = argv.front();
    argv.erase(argv.begin());
    if (!proc_.start(exe, argv, "gateway")) return false;
    started_ = true;
    static const std::regex ready("gateway ready");
    if (!proc_.wait_for_line(ready, timeout, Process::Stream::err)) return false;
    static const std::regex listening(R"(listener (\S+) listening on (\S+):(\d+))");
    for (const auto& line : proc_.lines(Process::Stream::err)) {
        std::smatch m;
        if (std::regex_search(line, m, listening))
            ports_[m[1].str()] = static_cast<std::uint16_t>(std::stoi(m[3].str()));
    }
    return !ports_.empty();
}

std::uint16_t Gateway::port(const std::string& listener) const {
    auto it = ports_.find(listener);
    return it == ports_.end() ? 0 : it->second;
}

std::optional<int> Gateway::stop(milliseconds timeout) {
    if (!proc_.signal(SIGTERM)) return proc_.wait_exit(0ms);
    return proc_.wait_exit(timeout);
}

}  // namespace dsgw::it
