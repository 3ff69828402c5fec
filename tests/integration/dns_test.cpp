// Servers given by host name (upstreams[].resolve_interval): every address a
// name resolves to is a server, and the set follows DNS while the gateway
// runs. No network is needed: the gateway runs in a private mount namespace
// (unshare -rm) with its own /etc/hosts bind-mounted over the real one (and
// an /etc/nsswitch.conf that looks host names up in it alone, so no lookup
// ever leaves the machine), and the test rewrites that file in place (same
// inode, so the bind mount sees it; glibc reads the file again on each
// lookup). The mocks listen on 127.0.0.2 and 127.0.0.3, which loopback
// answers without configuration.

#include "harness.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>

namespace dsgw::it {
namespace {

constexpr const char* kUnshare = "/usr/bin/unshare";

// The files a private /etc/hosts needs, in `dir`.
struct PrivateHosts {
    std::string hosts, nsswitch;
    PrivateHosts(const TempDir& dir, const std::string& content)
        : hosts(dir.write("hosts", content)),
          nsswitch(dir.write("nsswitch.conf", "hosts: files\n")) {}
    // unshare -rm sh -c 'mount --bind ... && exec "$@"' ... COMMAND...
    std::vector<std::string> launcher() const {
        return {kUnshare, "-rm", "sh", "-c",
                "mount --bind \"$0\" /etc/hosts && mount --bind \"$1\" /etc/nsswitch.conf && "
                "shift && exec \"$@\"",
                hosts, nsswitch};
    }
};

// Why a private /etc/hosts cannot be had here, or "" when it can.
std::string private_hosts_unavailable(const PrivateHosts& ph) {
    if (::access(kUnshare, X_OK) != 0) return std::string(kUnshare) + " not found";
    auto args = ph.launcher();
    args.erase(args.begin());
    args.insert(args.end(), {"getent", "hosts", "mockpool"});
    auto r = run_command(kUnshare, args, 10s);
    if (r.exit_code != 0)
        return "unshare -rm with a bind-mounted /etc/hosts failed (exit " +
               std::to_string(r.exit_code.value_or(-1)) + "): " + r.err_text();
    return "";
}

// Truncates and rewrites the file, keeping its inode (a rename would leave
// the bind mount on the old file).
void rewrite(const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    f.flush();
    ASSERT_TRUE(f.good()) << path;
}

std::string hosts_with(std::initializer_list<const char*> addresses) {
    std::string t = "127.0.0.1 localhost\n";
    for (const char* a : addresses) t += std::string(a) + " mockpool\n";
    return t;
}

// Who answered `n` sequential requests, by X-Mock-Server.
std::map<std::string, int> answered_by(std::uint16_t port, int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) {
        auto r = request_once(port, http_request("GET", "/v1/models"));
        EXPECT_TRUE(r);
        if (!r) break;
        EXPECT_EQ(r->status, 200) << r->body;
        ++seen[r->header("X-Mock-Server").value_or("?")];
    }
    return seen;
}

struct OpenStream {
    Conn conn;
    std::unique_ptr<StreamReader> reader;
};

// Each test: a private /etc/hosts where "mockpool" is 127.0.0.2 (skipped
// where unshare cannot give one), and mock "a" listening there; the gateway
// runs inside that mount namespace.
class Dns : public ::testing::Test {
protected:
    void SetUp() override {
        ph_.emplace(dir_, hosts_with({"127.0.0.2"}));
        if (auto why = private_hosts_unavailable(*ph_); !why.empty())
            GTEST_SKIP() << "needs a private /etc/hosts: " << why;
        a_.emplace("a", std::vector<std::string>{"--listen", "127.0.0.2:0"});
        ASSERT_TRUE(a_->ok());
        port_ = std::to_string(a_->port());
        gw_.set_launcher(ph_->launcher());
    }
    const std::string& hosts() const { return ph_->hosts; }

    TempDir dir_;
    std::optional<PrivateHosts> ph_;
    std::optional<MockServer> a_;
    std::string port_;  // a's port, which every address of mockpool uses
    Gateway gw_;        // declared last: stopped before the mock
};

TEST_F(Dns, EveryAddressIsAServerAndTheSetFollowsDns) {
    auto& a = *a_;
    auto& gw = gw_;
    const std::string& port = port_;
    const std::string& hosts = this->hosts();
    MockServer b("b", {"--listen", "127.0.0.3:" + port});
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b.port(), a.port()) << "127.0.0.3:" << port << " is taken";

    auto cfg = basic_config({"mockpool:" + port});
    cfg.upstream().resolve_interval = "1s";
    cfg.upstream().retries = 1;
    cfg.access_log = "off";
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    const std::string server = "server mockpool:" + port;

    // One address: one server.
    auto only_a = answered_by(gw.port(), 10);
    EXPECT_EQ(only_a["a"], 10) << gw.logs();

    // A second address appears: within a resolve_interval or two it is a
    // server of its own, and round robin alternates between them.
    rewrite(hosts, hosts_with({"127.0.0.2", "127.0.0.3"}));
    ASSERT_TRUE(gw.process().wait_for_line(
        std::regex(server + ": addresses 127\\.0\\.0\\.2 -> 127\\.0\\.0\\.2, 127\\.0\\.0\\.3"),
        10s))
        << gw.logs();
    auto both = answered_by(gw.port(), 20);
    EXPECT_EQ(both["a"] + both["b"], 20) << gw.logs();
    EXPECT_GE(both["a"], 5) << gw.logs();
    EXPECT_GE(both["b"], 5) << gw.logs();
    // Each address has its own series, named apart.
    auto admin =
        gw.process().wait_for_line(std::regex(R"(admin listening on 127\.0\.0\.1:(\d+))"), 1s);
    ASSERT_TRUE(admin);
    auto metrics = request_once(static_cast<std::uint16_t>(std::stoi((*admin)[1])),
                                http_request("GET", "/metrics"));
    ASSERT_TRUE(metrics);
    for (const char* ip : {"127.0.0.2", "127.0.0.3"})
        EXPECT_NE(metrics->body.find("server=\"mockpool:" + port + "/" + ip + "\""),
                  std::string::npos)
            << ip;

    // A stream runs on a (round robin: at most two tries to land there).
    OpenStream on_a;
    for (int attempt = 0; attempt < 4; ++attempt) {
        on_a.conn = Conn();
        on_a.reader = std::make_unique<StreamReader>(Clock::now());
        ASSERT_TRUE(on_a.conn.connect(gw.port()));
        ASSERT_TRUE(on_a.conn.send_all(stream_request(40, 100)));
        ASSERT_TRUE(on_a.conn.read_into(*on_a.reader, 10s, 1)) << on_a.reader->result().error;
        if (on_a.reader->result().response.header("X-Mock-Server").value_or("") == "a") break;
        ASSERT_TRUE(on_a.conn.read_into(*on_a.reader, 20s));  // b's: let it end
    }
    ASSERT_EQ(on_a.reader->result().response.header("X-Mock-Server").value_or(""), "a");

    // a's address goes: new requests reach only b, the stream on a ends
    // normally.
    rewrite(hosts, hosts_with({"127.0.0.3"}));
    ASSERT_TRUE(gw.process().wait_for_line(
        std::regex(server + ": addresses 127\\.0\\.0\\.2, 127\\.0\\.0\\.3 -> 127\\.0\\.0\\.3"),
        10s))
        << gw.logs();
    auto after = answered_by(gw.port(), 10);
    EXPECT_EQ(after["b"], 10) << gw.logs();
    ASSERT_FALSE(on_a.reader->finished()) << "the stream ended before the change; lengthen it";
    ASSERT_TRUE(on_a.conn.read_into(*on_a.reader, 20s)) << on_a.reader->result().error;
    const auto& r = on_a.reader->result();
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.response.status, 200);
    EXPECT_TRUE(r.saw_done());
    EXPECT_EQ(r.token_events().size(), 40u);
    auto a_stats = a.stats();
    ASSERT_TRUE(a_stats);
    EXPECT_EQ(a_stats->streams_cancelled, 0);
    // Applied like a reload, but the file was not read again.
    EXPECT_EQ(gw.process().text(Process::Stream::any).find("configuration reloaded"),
              std::string::npos)
        << gw.logs();
}

TEST_F(Dns, FailedLookupKeepsTheAddressesAndWarnsOnce) {
    auto& gw = gw_;
    const std::string& port = port_;
    const std::string& hosts = this->hosts();
    auto cfg = basic_config({"mockpool:" + port});
    cfg.upstream().resolve_interval = "100ms";
    cfg.access_log = "off";
    cfg.log_level = "debug";
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();

    // The name disappears from /etc/hosts: the lookup fails at once.
    rewrite(hosts, "127.0.0.1 localhost\n");
    const std::regex warning("mockpool:" + port + ": cannot resolve \"mockpool\"");
    ASSERT_TRUE(gw.process().wait_for_line(warning, 10s)) << gw.logs();
    // Three more rounds fail (debug lines); requests still go to the last
    // known address.
    const std::regex still("mockpool:" + port + ": still cannot resolve");
    auto count = [&gw](const std::regex& re) {
        int n = 0;
        for (const auto& line : gw.process().lines(Process::Stream::any))
            if (std::regex_search(line, re)) ++n;
        return n;
    };
    const auto deadline = Clock::now() + 10s;
    while (count(still) < 3 && Clock::now() < deadline) {
        auto seen = answered_by(gw.port(), 5);
        EXPECT_EQ(seen["a"], 5) << gw.logs();
    }
    ASSERT_GE(count(still), 3) << gw.logs();
    rewrite(hosts, hosts_with({"127.0.0.2"}));
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("\"mockpool\" resolves again"), 10s))
        << gw.logs();
    EXPECT_EQ(count(warning), 1) << "warned once, not every interval\n" << gw.logs();
    EXPECT_EQ(gw.process().text(Process::Stream::any).find("addresses 127.0.0.2 ->"),
              std::string::npos)
        << "a failed lookup must not change the servers\n"
        << gw.logs();
}

}  // namespace
}  // namespace dsgw::it
