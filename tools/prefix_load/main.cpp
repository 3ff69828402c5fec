// prefix_load: the load generator of bench/prefix.sh (cache-aware balancing,
// SPEC §9). A fixed number of closed-loop clients send streaming chat
// completions ("stream":true with "stream_options":{"include_usage":true}) over
// keep-alive connections, either to one target (the gateway) or, with
// --oracle, straight to server (group % n) of a list: the best placement a
// balancer could find without knowing the future. --affinity routes in the
// client instead, as SPEC §9 describes prefix_affinity (below): a reference
// for the gateway's balancer. Loopback only.
//
//   prefix_load --target 127.0.0.1:8080 | --oracle H:P,H:P,... | --affinity H:P,H:P,...
//               [--block-bytes 512] [--max-load-ratio 1.25] [--affinity-table last|set]
//               [--workload shared|multiturn|hot] [--seed N] [--order-seed N]
//               [--concurrency N] [--ramp-ms N]
//               [--groups N] [--prompts-per-group N] [--system-bytes N]
//               [--question-bytes N] [--hot-share F] [--users N]
//               [--conversations N] [--turns N] [--common-prefix-bytes N]
//               [--servers N] [--mock-tokens N] [--no-bind] [--csv FILE]
//
// Workloads, each deterministic from --seed (the text, the order and the users):
//   shared     SGLang's generated-shared-prefix, scaled: --groups groups of
//              --prompts-per-group prompts; a request is the group's system
//              message (--system-bytes of text) and a unique user question
//              (--question-bytes); the requests go out in a shuffled order.
//   hot        as shared, with the same number of requests, but group 0 has
//              --hot-share of them (default 0.6), the other groups the rest.
//   multiturn  --conversations chats of --turns turns: turn k sends the system
//              message, the k earlier questions with the answers the server
//              gave, and a new question. The conversations wait in one queue
//              (shuffled at first); a free client takes the first, and once
//              its answer is in, the conversation's next turn joins the end
//              of the queue. So turns interleave, and a client's next request
//              is not the conversation it just served (closed-loop clients
//              that kept their conversations would make least_conn sticky).
// --order-seed (shared, hot) changes the order and the users but not the
// text: two runs with different order seeds send the same prompts.
// --common-prefix-bytes puts the same text in front of every system message
// (an agent's tool list shared by all: every prompt has the same first blocks).
//
// Each request comes from a "user": its socket is bound to 127.0.1.1 + user
// (shared and hot: one of --users drawn per request; multiturn: the
// conversation), so ip_hash has a client address to hash. Connections are
// kept alive and reused per (user, server).
//
// --affinity: the canonical prompt (each message's role, then its content) is
// cut into --block-bytes blocks, each block's key a hash chained with the one
// before; a table remembers the server that last took each key (with
// --affinity-table set: every server that took it). A server is under the
// bound when its requests in flight stay within ceil(ratio x (all in flight
// + 1) / n) with this one (consistent hashing with bounded loads). Among the
// servers under the bound, the one with the most leading blocks remembered
// for it wins; ties (a prefix never seen: none) go by rendezvous hashing of
// the first block. Every block is then remembered for the chosen server.
//
// --ramp-ms spreads the clients' first requests over that time (client i
// starts at i x ramp / concurrency), so a run does not open with every
// client's prompt new to every server at the same instant.
//
// Per request: TTFT (from writing the request to the first SSE event carrying
// content), total time, prompt_tokens and cached_tokens from the usage chunk,
// and the X-Mock-Server header (which server answered). Output: one JSON line
// on stdout; with --csv FILE also one line per request.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

struct Options {
    std::vector<tcp::endpoint> endpoints;  // one (the target) or the oracle's servers
    enum class Route { target, oracle, affinity } route = Route::target;
    std::size_t block_bytes = 512;
    double max_load_ratio = 1.25;
    int bound_window = 0;             // --bound-window W: bound the share of the last W picks
    bool affinity_table_set = false;  // --affinity-table set: every server that took a block
    std::string workload = "shared";
    std::uint64_t seed = 1;
    std::uint64_t order_seed = 0;  // 0: the seed
    int concurrency = 16;
    int ramp_ms = 0;  // client i starts at i x ramp / concurrency
    int groups = 32;
    int prompts_per_group = 16;
    int system_bytes = 8192;
    int question_bytes = 256;
    double hot_share = 0.6;
    int users = 64;
    int conversations = 48;
    int turns = 8;
    int common_prefix_bytes = 0;
    int servers = 0;      // expected server count, for max/mean (0: those seen)
    int mock_tokens = 0;  // > 0: sent as X-Mock-Tokens
    bool bind = true;
    std::string csv;
};

// splitmix64: the one source of randomness, so a seed gives the same run
// whatever the standard library.
std::uint64_t mix(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct Rng {
    std::uint64_t s;
    std::uint64_t next() { return mix(s++); }
    std::uint64_t below(std::uint64_t n) { return next() % n; }
};

std::uint64_t key(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
    return mix(mix(mix(seed ^ 0x5851f42d4c957f2dull) ^ a) ^ (b * 0x9e3779b97f4a7c15ull)) ^
           mix(c + 0x632be59bd9b4e019ull);
}

// `bytes` of lower-case words and spaces (nothing to escape in JSON),
// determined by `k`.
std::string text(std::uint64_t k, int bytes) {
    std::string out;
    out.reserve(static_cast<std::size_t>(bytes));
    Rng r{k};
    while (static_cast<int>(out.size()) < bytes) {
        auto v = r.next();
        int len = 2 + static_cast<int>(v % 8);
        v >>= 3;
        for (int i = 0; i < len && static_cast<int>(out.size()) < bytes; ++i, v >>= 5)
            out += static_cast<char>('a' + (v & 31) % 26);
        if (static_cast<int>(out.size()) < bytes) out += ' ';
    }
    return out;
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += ch;
        }
    }
    out += '"';
}

struct Message {
    const char* role;
    std::string content;
};

struct Job {
    int group = 0;  // shared/hot: the prompt group; multiturn: the conversation
    int user = 0;
    int turn = 0;  // shared/hot: the prompt's number within its group
};

struct Record {
    Job job;
    std::string server;
    int status = 0;
    bool ok = false;
    double ttft_ms = -1;
    double total_ms = -1;
    long prompt_tokens = 0;
    long cached_tokens = 0;
};

struct Conn {
    explicit Conn(const asio::any_io_executor& ex) : sock(ex) {}
    tcp::socket sock;
    beast::flat_buffer buf;
};

struct Ctx {
    explicit Ctx(const Options& opt) : o(opt) {}
    const Options& o;
    std::vector<std::string> system;  // per group or conversation
    std::vector<Job> jobs;            // shared/hot, in sending order
    std::size_t next_job = 0;
    std::vector<std::vector<Message>> history;  // multiturn, per conversation
    std::deque<int> ready;                      // multiturn: conversations whose turn is next
    int conversations_left = 0;                 // multiturn: not finished yet
    std::map<std::pair<int, int>, std::vector<std::unique_ptr<Conn>>> idle;  // (user, server)
    std::vector<Record> records;
    std::deque<int> recent;         // --bound-window: the last picks
    std::vector<int> recent_count;  // per server, in `recent`
    std::vector<int> in_flight;     // --affinity: per server
    std::unordered_map<std::uint64_t, std::uint64_t>
        block_servers;  // --affinity: key -> servers (bits)
};

// The value of the JSON string that starts at `s[pos]` (just after its
// opening quote), with the common escapes undone.
std::string json_string_at(std::string_view s, std::size_t pos) {
    std::string out;
    for (std::size_t i = pos; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') break;
        if (c == '\\' && i + 1 < s.size()) {
            char e = s[++i];
            out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
            continue;
        }
        out += c;
    }
    return out;
}

long json_number_after(std::string_view s, std::string_view name) {
    auto k = s.find(name);
    if (k == std::string_view::npos) return -1;
    k += name.size();
    while (k < s.size() && (s[k] == ' ' || s[k] == ':')) ++k;
    return std::strtol(std::string(s.substr(k, 24)).c_str(), nullptr, 10);
}

std::string build_body(const Ctx& c, const Job& j, const std::string& question) {
    std::string b;
    b.reserve(c.system[static_cast<std::size_t>(j.group)].size() + question.size() + 256);
    b += R"({"model":"deepseek-mock","stream":true,"stream_options":{"include_usage":true},)";
    b += R"("messages":[{"role":"system","content":)";
    append_json_string(b, c.system[static_cast<std::size_t>(j.group)]);
    b += '}';
    if (c.o.workload == "multiturn") {
        for (const auto& m : c.history[static_cast<std::size_t>(j.group)]) {
            b += R"(,{"role":")";
            b += m.role;
            b += R"(","content":)";
            append_json_string(b, m.content);
            b += '}';
        }
    }
    b += R"(,{"role":"user","content":)";
    append_json_string(b, question);
    b += "}]}";
    return b;
}

// The canonical prompt of SPEC §9: each message's role, then its content.
std::string canonical_prompt(const Ctx& c, const Job& j, const std::string& question) {
    std::string p = "system" + c.system[static_cast<std::size_t>(j.group)];
    if (c.o.workload == "multiturn") {
        for (const auto& m : c.history[static_cast<std::size_t>(j.group)]) {
            p += m.role;
            p += m.content;
        }
    }
    return p + "user" + question;
}

// --affinity's choice (see the head of this file); remembers the blocks.
int affinity_pick(Ctx& c, const std::string& prompt) {
    const int n = static_cast<int>(c.o.endpoints.size());
    std::vector<std::uint64_t> keys;
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::size_t at = 0; at + c.o.block_bytes <= prompt.size(); at += c.o.block_bytes) {
        for (std::size_t i = at; i < at + c.o.block_bytes; ++i)
            h = (h ^ static_cast<unsigned char>(prompt[i])) * 0x100000001b3ull;
        keys.push_back(h = mix(h));
    }
    int total = 0;
    for (int v : c.in_flight) total += v;
    const int cap = static_cast<int>(std::ceil(c.o.max_load_ratio * (total + 1) / n));
    // --bound-window W: the bound is on the server's share of the last W
    // picks instead (a lasting skew, not a passing one); in flight, a server
    // may then hold up to twice the mean.
    const int window = static_cast<int>(c.recent.size());
    const int window_cap = static_cast<int>(std::ceil(c.o.max_load_ratio * (window + 1) / n));
    const int flight_cap = static_cast<int>(std::ceil(2.0 * (total + 1) / n));
    auto under = [&](int s) {
        const auto i = static_cast<std::size_t>(s);
        if (c.o.bound_window == 0) return c.in_flight[i] + 1 <= cap;
        return c.recent_count[i] + 1 <= window_cap && c.in_flight[i] + 1 <= flight_cap;
    };
    // Per server: the leading blocks remembered for it, and its rendezvous
    // weight (the first block's hash with the server's), which breaks ties.
    const std::uint64_t first = keys.empty() ? mix(prompt.size()) : keys[0];
    int pick = -1;
    std::size_t best_match = 0;
    std::uint64_t best_weight = 0;
    for (int s = 0; s < n; ++s) {
        if (!under(s)) continue;
        std::size_t match = 0;
        for (; match < keys.size(); ++match) {
            auto it = c.block_servers.find(keys[match]);
            if (it == c.block_servers.end() || !(it->second >> s & 1)) break;
        }
        const std::uint64_t w = mix(first ^ mix(static_cast<std::uint64_t>(s) + 1));
        if (pick < 0 || match > best_match || (match == best_match && w > best_weight))
            pick = s, best_match = match, best_weight = w;
    }
    if (pick < 0) {  // every server is over a window bound: the least loaded
        pick = static_cast<int>(std::min_element(c.in_flight.begin(), c.in_flight.end()) -
                                c.in_flight.begin());
    }
    if (c.o.bound_window > 0) {
        c.recent.push_back(pick);
        ++c.recent_count[static_cast<std::size_t>(pick)];
        if (static_cast<int>(c.recent.size()) > c.o.bound_window) {
            --c.recent_count[static_cast<std::size_t>(c.recent.front())];
            c.recent.pop_front();
        }
    }
    const std::uint64_t bit = std::uint64_t{1} << pick;
    for (auto k : keys) {
        auto& m = c.block_servers[k];
        m = c.o.affinity_table_set ? m | bit : bit;
    }
    return pick;
}

asio::awaitable<std::unique_ptr<Conn>> connect(Ctx& c, int user, int server) {
    auto ex = co_await asio::this_coro::executor;
    auto conn = std::make_unique<Conn>(ex);
    const auto& ep = c.o.endpoints[static_cast<std::size_t>(server)];
    boost::system::error_code ec;
    conn->sock.open(ep.protocol(), ec);
    if (ec) co_return nullptr;
    if (c.o.bind) {
        // 127.0.1.1 + user: a loopback address per user.
        asio::ip::address_v4 a(0x7f000101u + static_cast<std::uint32_t>(user));
        conn->sock.bind(tcp::endpoint(a, 0), ec);
        if (ec) co_return nullptr;
    }
    auto [cec] = co_await conn->sock.async_connect(ep, nothrow);
    if (cec) co_return nullptr;
    conn->sock.set_option(tcp::no_delay(true), ec);
    co_return conn;
}

// One request on `conn`: fills `r` (and `answer`). Returns false when the
// connection cannot be reused; `r.status` stays 0 when nothing came back.
asio::awaitable<bool> exchange(Conn& conn, const std::string& req, Record& r, std::string& answer) {
    const auto t0 = Clock::now();
    auto ms_since = [&t0] {
        return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    };
    auto [wec, wn] = co_await asio::async_write(conn.sock, asio::buffer(req), nothrow);
    if (wec) co_return false;
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    auto [hec, hn] = co_await http::async_read_header(conn.sock, conn.buf, p, nothrow);
    if (hec) co_return false;
    r.status = static_cast<int>(p.get().result_int());
    if (auto it = p.get().find("X-Mock-Server"); it != p.get().end())
        r.server = std::string(it->value());
    std::string carry;
    bool done = false;
    char buf[16384];
    while (!p.is_done()) {
        p.get().body().data = buf;
        p.get().body().size = sizeof buf;
        auto [rec, rn] = co_await http::async_read_some(conn.sock, conn.buf, p, nothrow);
        if (rec == http::error::need_buffer) rec = {};
        if (rec) co_return false;
        carry.append(buf, sizeof buf - p.get().body().size);
        std::size_t pos = 0;
        for (;;) {
            auto nl = carry.find('\n', pos);
            if (nl == std::string::npos) break;
            std::string_view line(carry.data() + pos, nl - pos);
            pos = nl + 1;
            if (line.rfind("data:", 0) != 0) continue;
            line.remove_prefix(5);
            if (line.find("[DONE]") != std::string_view::npos) {
                done = true;
                continue;
            }
            constexpr std::string_view kContent = "\"content\":\"";
            if (auto k = line.find(kContent); k != std::string_view::npos) {
                auto piece = json_string_at(line, k + kContent.size());
                if (!piece.empty() && r.ttft_ms < 0) r.ttft_ms = ms_since();
                answer += piece;
            }
            if (line.find("\"usage\":{") != std::string_view::npos) {
                r.prompt_tokens = std::max(0L, json_number_after(line, "\"prompt_tokens\""));
                r.cached_tokens = std::max(0L, json_number_after(line, "\"cached_tokens\""));
            }
        }
        carry.erase(0, pos);
    }
    r.total_ms = ms_since();
    r.ok = r.status == 200 && done && r.ttft_ms >= 0;
    co_return p.get().keep_alive();
}

asio::awaitable<std::string> send(Ctx& c, const Job& j, const std::string& question) {
    using Route = Options::Route;
    const int server = c.o.route == Route::oracle ? j.group % static_cast<int>(c.o.endpoints.size())
                       : c.o.route == Route::affinity
                           ? affinity_pick(c, canonical_prompt(c, j, question))
                           : 0;
    if (c.o.route == Route::affinity) ++c.in_flight[static_cast<std::size_t>(server)];
    const auto body = build_body(c, j, question);
    std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: prefix-load\r\n"
        "Content-Type: application/json\r\n";
    if (c.o.mock_tokens > 0) req += "X-Mock-Tokens: " + std::to_string(c.o.mock_tokens) + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    req += body;

    Record r;
    r.job = j;
    std::string answer;
    auto& idle = c.idle[{j.user, server}];
    // A reused connection the other side closed while idle fails before any
    // answer: try once more on a new one.
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::unique_ptr<Conn> conn;
        const bool reused = !idle.empty();
        if (reused) {
            conn = std::move(idle.back());
            idle.pop_back();
        } else {
            conn = co_await connect(c, j.user, server);
            if (!conn) break;
        }
        r = Record{};
        r.job = j;
        answer.clear();
        bool keep = co_await exchange(*conn, req, r, answer);
        if (keep && r.ok) c.idle[{j.user, server}].push_back(std::move(conn));
        if (r.status != 0 || !reused) break;
    }
    if (c.o.route == Route::affinity) --c.in_flight[static_cast<std::size_t>(server)];
    c.records.push_back(r);
    if (!r.ok) std::fprintf(stderr, "prefix_load: request failed (status %d)\n", r.status);
    co_return answer;
}

asio::awaitable<void> client(Ctx& c, int id) {
    const auto& o = c.o;
    if (o.ramp_ms > 0) {
        asio::steady_timer start(
            co_await asio::this_coro::executor,
            std::chrono::microseconds(std::int64_t{o.ramp_ms} * 1000 * id / o.concurrency));
        co_await start.async_wait(nothrow);
    }
    if (o.workload == "multiturn") {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer idle(ex);
        for (;;) {
            if (c.ready.empty()) {
                if (c.conversations_left == 0) co_return;
                // Every unfinished conversation is in flight: one will be back.
                idle.expires_after(std::chrono::milliseconds(1));
                co_await idle.async_wait(nothrow);
                continue;
            }
            const int conv = c.ready.front();
            c.ready.pop_front();
            auto& h = c.history[static_cast<std::size_t>(conv)];
            const int turn = static_cast<int>(h.size() / 2);
            Job j{conv, conv, turn};
            auto q = text(
                key(o.seed, 3, static_cast<std::uint64_t>(conv), static_cast<std::uint64_t>(turn)),
                o.question_bytes);
            auto answer = co_await send(c, j, q);
            h.push_back({"user", std::move(q)});
            h.push_back({"assistant", std::move(answer)});
            if (turn + 1 < o.turns)
                c.ready.push_back(conv);
            else
                --c.conversations_left;
        }
    }
    while (c.next_job < c.jobs.size()) {
        const Job j = c.jobs[c.next_job++];
        auto q = text(
            key(o.seed, 2, static_cast<std::uint64_t>(j.group), static_cast<std::uint64_t>(j.turn)),
            o.question_bytes);
        co_await send(c, j, q);
    }
}

void make_workload(Ctx& c) {
    const auto& o = c.o;
    const int n = o.workload == "multiturn" ? o.conversations : o.groups;
    const std::string common = text(key(o.seed, 0), o.common_prefix_bytes);
    for (int g = 0; g < n; ++g)
        c.system.push_back(common + text(key(o.seed, 1, static_cast<std::uint64_t>(g)),
                                         o.system_bytes - o.common_prefix_bytes));
    Rng r{key(o.order_seed ? o.order_seed : o.seed, 4)};
    if (o.workload == "multiturn") {
        c.history.resize(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) c.ready.push_back(i);
        for (std::size_t i = c.ready.size(); i > 1; --i)
            std::swap(c.ready[i - 1], c.ready[r.below(i)]);
        c.conversations_left = n;
        return;
    }
    const int total = o.groups * o.prompts_per_group;
    std::vector<int> per_group(static_cast<std::size_t>(o.groups), o.prompts_per_group);
    if (o.workload == "hot" && o.groups > 1) {
        const int hot = static_cast<int>(o.hot_share * total + 0.5);
        per_group.assign(static_cast<std::size_t>(o.groups), 0);
        per_group[0] = hot;
        for (int i = 0; i < total - hot; ++i)
            ++per_group[static_cast<std::size_t>(1 + i % (o.groups - 1))];
    }
    for (int g = 0; g < o.groups; ++g)
        for (int i = 0; i < per_group[static_cast<std::size_t>(g)]; ++i)
            c.jobs.push_back(
                {g, static_cast<int>(r.below(static_cast<std::uint64_t>(o.users))), i});
    for (std::size_t i = c.jobs.size(); i > 1; --i) std::swap(c.jobs[i - 1], c.jobs[r.below(i)]);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    // Nearest rank.
    auto rank = static_cast<std::size_t>(p * static_cast<double>(v.size()) + 0.999999);
    return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

std::string counts_json(const std::map<std::string, int>& m) {
    std::string s = "{";
    for (const auto& [k, v] : m) {
        if (s.size() > 1) s += ',';
        append_json_string(s, k);
        s += ':' + std::to_string(v);
    }
    return s + "}";
}

double max_over_mean(const std::map<std::string, int>& m, int servers) {
    int sum = 0, max = 0;
    for (const auto& [k, v] : m) {
        sum += v;
        max = std::max(max, v);
    }
    const int n = std::max(servers, static_cast<int>(m.size()));
    return sum > 0 ? max * static_cast<double>(n) / sum : 0;
}

tcp::endpoint parse_endpoint(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("HOST:PORT expected: " + s);
    return {asio::ip::make_address(s.substr(0, colon)),
            static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

int usage() {
    std::fprintf(
        stderr,
        "usage: prefix_load --target HOST:PORT | --oracle HOST:PORT,HOST:PORT,...\n"
        "  | --affinity HOST:PORT,... [--block-bytes N] [--max-load-ratio F]\n"
        "    [--affinity-table last|set]\n"
        "  [--workload shared|multiturn|hot] [--seed N] [--order-seed N] [--concurrency N]\n"
        "  [--ramp-ms N]\n"
        "  [--groups N] [--prompts-per-group N] [--system-bytes N] [--question-bytes N]\n"
        "  [--hot-share F] [--users N] [--conversations N] [--turns N]\n"
        "  [--common-prefix-bytes N] [--servers N] [--mock-tokens N] [--no-bind]\n"
        "  [--csv FILE]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string_view a = argv[i];
            if (a == "--no-bind") {
                o.bind = false;
                continue;
            }
            if (i + 1 >= argc) return usage();
            std::string v = argv[++i];
            if (a == "--target") {
                o.endpoints = {parse_endpoint(v)};
            } else if (a == "--oracle" || a == "--affinity") {
                o.route = a == "--oracle" ? Options::Route::oracle : Options::Route::affinity;
                o.endpoints.clear();
                for (std::size_t s = 0; s <= v.size();) {
                    auto e = v.find(',', s);
                    if (e == std::string::npos) e = v.size();
                    o.endpoints.push_back(parse_endpoint(v.substr(s, e - s)));
                    s = e + 1;
                }
            } else if (a == "--workload")
                o.workload = v;
            else if (a == "--seed")
                o.seed = std::stoull(v);
            else if (a == "--ramp-ms")
                o.ramp_ms = std::stoi(v);
            else if (a == "--block-bytes")
                o.block_bytes = std::stoul(v);
            else if (a == "--max-load-ratio")
                o.max_load_ratio = std::stod(v);
            else if (a == "--bound-window")
                o.bound_window = std::stoi(v);
            else if (a == "--affinity-table" && (v == "last" || v == "set"))
                o.affinity_table_set = v == "set";
            else if (a == "--order-seed")
                o.order_seed = std::stoull(v);
            else if (a == "--concurrency")
                o.concurrency = std::stoi(v);
            else if (a == "--groups")
                o.groups = std::stoi(v);
            else if (a == "--prompts-per-group")
                o.prompts_per_group = std::stoi(v);
            else if (a == "--system-bytes")
                o.system_bytes = std::stoi(v);
            else if (a == "--question-bytes")
                o.question_bytes = std::stoi(v);
            else if (a == "--hot-share")
                o.hot_share = std::stod(v);
            else if (a == "--users")
                o.users = std::stoi(v);
            else if (a == "--conversations")
                o.conversations = std::stoi(v);
            else if (a == "--turns")
                o.turns = std::stoi(v);
            else if (a == "--common-prefix-bytes")
                o.common_prefix_bytes = std::stoi(v);
            else if (a == "--servers")
                o.servers = std::stoi(v);
            else if (a == "--mock-tokens")
                o.mock_tokens = std::stoi(v);
            else if (a == "--csv")
                o.csv = v;
            else {
                std::fprintf(stderr, "prefix_load: unknown option %s\n", argv[i - 1]);
                return usage();
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prefix_load: %s\n", e.what());
        return usage();
    }
    if (o.endpoints.empty() ||
        (o.workload != "shared" && o.workload != "hot" && o.workload != "multiturn") ||
        o.concurrency < 1 || o.ramp_ms < 0 || o.groups < 1 || o.prompts_per_group < 1 ||
        o.users < 1 || o.users > 65000 || o.conversations < 1 || o.turns < 1 ||
        o.question_bytes < 1 || o.common_prefix_bytes < 0 ||
        o.common_prefix_bytes > o.system_bytes || o.hot_share < 0 || o.block_bytes < 1 ||
        o.max_load_ratio < 1 || o.endpoints.size() > 64 || o.hot_share > 1)
        return usage();
    if (o.workload == "multiturn" && o.conversations > 65000) return usage();

    asio::io_context io(1);  // before c: its idle connections go first
    Ctx c(o);
    make_workload(c);
    c.in_flight.assign(o.endpoints.size(), 0);
    c.recent_count.assign(o.endpoints.size(), 0);
    for (int i = 0; i < o.concurrency; ++i) asio::co_spawn(io, client(c, i), asio::detached);
    const auto t0 = Clock::now();
    io.run();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

    std::vector<double> ttft, total, hot_ttft;
    std::map<std::string, int> per_server, hot_servers;
    long prompt = 0, cached = 0;
    int errors = 0, hot_requests = 0;
    const bool hot = o.workload == "hot";
    for (const auto& r : c.records) {
        if (!r.ok) {
            ++errors;
            continue;
        }
        ttft.push_back(r.ttft_ms);
        total.push_back(r.total_ms);
        prompt += r.prompt_tokens;
        cached += r.cached_tokens;
        ++per_server[r.server.empty() ? "?" : r.server];
        if (hot && r.job.group == 0) {
            ++hot_requests;
            hot_ttft.push_back(r.ttft_ms);
            ++hot_servers[r.server.empty() ? "?" : r.server];
        }
    }
    if (!o.csv.empty()) {
        std::ofstream f(o.csv);
        f << "n,group,user,turn,server,status,ok,ttft_ms,total_ms,prompt_tokens,cached_tokens\n";
        int n = 0;
        for (const auto& r : c.records) {
            char line[256];
            std::snprintf(line, sizeof line, "%d,%d,%d,%d,%s,%d,%d,%.3f,%.3f,%ld,%ld\n", n++,
                          r.job.group, r.job.user, r.job.turn, r.server.c_str(), r.status,
                          r.ok ? 1 : 0, r.ttft_ms, r.total_ms, r.prompt_tokens, r.cached_tokens);
            f << line;
        }
    }
    const int ok = static_cast<int>(ttft.size());
    std::printf(
        "{\"workload\":\"%s\",\"mode\":\"%s\",\"requests\":%d,\"errors\":%d,"
        "\"seconds\":%.3f,\"throughput_rps\":%.2f,\"prompt_tokens\":%ld,"
        "\"cached_tokens\":%ld,\"hit_rate\":%.4f,\"ttft_p50_ms\":%.2f,"
        "\"ttft_p90_ms\":%.2f,\"ttft_p99_ms\":%.2f,\"total_p50_ms\":%.2f,"
        "\"total_p99_ms\":%.2f,\"servers\":%s,\"max_over_mean\":%.3f",
        o.workload.c_str(),
        o.route == Options::Route::oracle     ? "oracle"
        : o.route == Options::Route::affinity ? "affinity"
                                              : "target",
        static_cast<int>(c.records.size()), errors, secs, ok / secs, prompt, cached,
        prompt > 0 ? static_cast<double>(cached) / static_cast<double>(prompt) : 0.0,
        percentile(ttft, 0.5), percentile(ttft, 0.9), percentile(ttft, 0.99),
        percentile(total, 0.5), percentile(total, 0.99), counts_json(per_server).c_str(),
        max_over_mean(per_server, o.servers));
    if (hot) {
        // Servers that took at least a tenth of the hot group's requests.
        int spread = 0;
        for (const auto& [k, v] : hot_servers) spread += v * 10 >= hot_requests ? 1 : 0;
        std::printf(
            ",\"hot_requests\":%d,\"hot_servers\":%s,\"hot_spread\":%d,"
            "\"hot_ttft_p50_ms\":%.2f,\"hot_ttft_p99_ms\":%.2f",
            hot_requests, counts_json(hot_servers).c_str(), spread, percentile(hot_ttft, 0.5),
            percentile(hot_ttft, 0.99));
    }
    std::printf("}\n");
    return errors == 0 ? 0 : 1;
}
