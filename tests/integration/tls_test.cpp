// TLS (issue 3, SPEC §3 listeners[].tls and upstreams[].tls, §7 SIGHUP):
// listener TLS through curl, `openssl s_client` and an in-process OpenSSL
// client; versions, ciphers, ALPN, SNI, client certificates, resumption,
// certificate reload; TLS to upstreams against the mock server's HTTPS mode;
// and --check-config's certificate checks. Certificates are made per test by
// TestPki (tls_certs.hpp) with the openssl command line.

#include <openssl/ssl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>

#include "harness.hpp"
#include "harness_tls.hpp"
#include "sanitizer.hpp"
#include "tls_certs.hpp"

namespace dsgw::it {
namespace {

// ------------------------------------------------------------------ helpers

std::string q(const std::string& s) {
    return "\"" + s + "\"";
}

// {certificate: "C", private_key: "K"}
std::string pair_yaml(const std::string& cert, const std::string& key) {
    return "certificate: " + q(cert) + ", private_key: " + q(key);
}
std::string pair_yaml(const Cert& c) {
    return pair_yaml(c.cert, c.key);
}

// Inserts `text` (one YAML line, already indented) after the first line that
// contains `anchor`.
std::string insert_after(std::string yaml, const std::string& anchor, const std::string& text) {
    auto pos = yaml.find(anchor);
    EXPECT_NE(pos, std::string::npos) << "config lacks " << anchor << ":\n" << yaml;
    if (pos == std::string::npos) return yaml;
    auto eol = yaml.find('\n', pos);
    yaml.insert(eol + 1, text + "\n");
    return yaml;
}

// The first listener gets `tls: {FLOW}`.
std::string with_listener_tls(const std::string& yaml, const std::string& flow) {
    return insert_after(yaml, "\n    address: ", "    tls: {" + flow + "}");
}
// The first upstream gets `tls: VALUE` (a flow map "{...}" or true/false).
std::string with_upstream_tls(const std::string& yaml, const std::string& value) {
    return insert_after(yaml, "\n    balancer: ", "    tls: " + value);
}

std::string join(const std::vector<std::string>& lines) {
    std::string t;
    for (const auto& l : lines) t += l + "\n";
    return t;
}

// Lines of `lines` that contain every one of `needles`.
std::vector<std::string> lines_with(const std::vector<std::string>& lines,
                                    const std::vector<std::string>& needles) {
    std::vector<std::string> out;
    for (const auto& l : lines) {
        bool all = true;
        for (const auto& n : needles) all = all && l.find(n) != std::string::npos;
        if (all) out.push_back(l);
    }
    return out;
}

std::string plain_completion() {
    return http_request("POST", "/v1/chat/completions", {{"Content-Type", "application/json"}},
                        chat_body(false), "HTTP/1.1", "localhost");
}

// What a TLS client of the test CA offers by default.
TlsOptions trusting(const TestPki& pki, const std::string& server_name = "localhost") {
    TlsOptions o;
    o.ca_file = pki.ca;
    o.server_name = server_name;
    return o;
}

// Waits for a new "configuration reloaded" or "reload rejected" line after
// `seen` lines of stderr; returns "reloaded", "rejected" or "" (timeout).
std::string wait_reload(Process& p, std::size_t seen, milliseconds timeout = 10s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto lines = p.lines(Process::Stream::err);
        for (std::size_t i = seen; i < lines.size(); ++i) {
            if (lines[i].find("configuration reloaded") != std::string::npos) return "reloaded";
            if (lines[i].find("reload rejected") != std::string::npos) return "rejected";
        }
        std::this_thread::sleep_for(20ms);
    }
    return "";
}

// The last access-log line (JSON on stdout) whose path starts with `path`,
// waiting for it.
std::optional<Json> access_line(Process& p, const std::string& path, milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto lines = p.lines(Process::Stream::out);
        for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
            if (it->empty() || (*it)[0] != '{') continue;
            auto j = parse_json(*it);
            if (j && j->get("path") && j->get("path")->str.rfind(path, 0) == 0) return j;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(20ms);
    }
}

// Whether `openssl s_client` output shows a server certificate with CN=cn
// ("subject=CN = x" on OpenSSL 3.0, "subject=CN=x" on later versions).
bool subject_is(const std::string& out, const std::string& cn) {
    static const std::regex re(R"(^subject=\s*CN\s*=\s*(\S+)\s*$)");
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t eol = out.find('\n', pos);
        if (eol == std::string::npos) eol = out.size();
        std::string line = out.substr(pos, eol - pos);
        std::smatch m;
        if (std::regex_search(line, m, re)) return m[1].str() == cn;
        pos = eol + 1;
    }
    return false;
}

// The serial of the certificate the gateway presents to a new connection.
std::string served_serial(std::uint16_t port, const TestPki& pki,
                          const std::string& server_name = "localhost") {
    TlsConn c;
    if (!c.connect(port, trusting(pki, server_name))) return "handshake failed: " + c.error();
    return c.info().peer_serial;
}

// ------------------------------------------------------------------ TLS mock

// deepseek-mock-server in HTTPS mode (--tls-cert/--tls-key [--tls-client-ca]).
class TlsMock {
public:
    TlsMock(const TestPki& pki, const std::string& id, const Cert& cert,
            std::vector<std::string> extra = {}, bool client_cert = false)
        : id_(id) {
        // The control connection (stats) does not verify: the mock may be
        // serving a certificate of the wrong CA on purpose.
        control_ = trusting(pki);
        control_.verify = false;
        if (client_cert) {
            control_.cert_file = pki.client.cert;
            control_.key_file = pki.client.key;
        }
        std::vector<std::string> argv = {"--listen", "127.0.0.1:0", "--id",
                                         id,         "--quiet",     "--tls-cert",
                                         cert.cert,  "--tls-key",   cert.key};
        argv.insert(argv.end(), extra.begin(), extra.end());
        if (!proc_.start(mock_bin(), argv, "tls-mock " + id)) return;
        static const std::regex re(R"(listening on 127\.0\.0\.1:(\d+))");
        if (auto m = proc_.wait_for_line(re, 10s, Process::Stream::out))
            port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    }
    ~TlsMock() {
        if (::testing::Test::HasFailure() && std::getenv("DSGW_IT_QUIET") == nullptr) {
            std::string t = proc_.tail(10);
            if (!t.empty()) std::cerr << "--- tls mock " << id_ << " output (tail):\n" << t;
        }
        proc_.stop(3s);
    }
    bool ok() const { return port_ != 0; }
    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    Process& process() { return proc_; }

    // GET /mock/stats over a TLS connection of its own (not counted).
    std::optional<Json> stats() {
        std::string err;
        auto r = tls_request_once(port_, control_, http_request("GET", "/mock/stats"), &err);
        if (!r || r->status != 200) return std::nullopt;
        ++own_;
        auto j = r->json();
        return j;
    }
    // A stats counter, minus this object's own control connections for the
    // connection and handshake counters.
    std::int64_t counter(const Json& j, const char* name) const {
        const Json* v = j.get(name);
        std::int64_t n = v ? v->as_int(-1) : -1;
        std::string k = name;
        if (k == "connections_accepted" || k == "tls_handshakes") n -= own_;
        return n;
    }

private:
    std::string id_;
    Process proc_;
    std::uint16_t port_ = 0;
    TlsOptions control_;
    std::int64_t own_ = 0;
};

// ================================================================== certificates

TEST(TlsPki, MakesTheCertificatesTheTestsNeed) {
    auto t0 = Clock::now();
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    std::cout << "certificates made in " << ms_between(t0, Clock::now()) << " ms\n";

    auto verify = [&](const std::string& ca, const std::string& cert,
                      const std::vector<std::string>& extra = {}) {
        std::vector<std::string> a = {"verify", "-CAfile", ca};
        a.insert(a.end(), extra.begin(), extra.end());
        a.push_back(cert);
        return run_command("/usr/bin/openssl", a);
    };
    for (const Cert* c : {&pki.server, &pki.server_renewed, &pki.other, &pki.expiring}) {
        auto r = verify(pki.ca, c->cert, {"-purpose", "sslserver"});
        EXPECT_EQ(r.exit_code.value_or(-1), 0) << c->cert << "\n" << all_output(r);
    }
    {
        auto r = verify(pki.ca, pki.client.cert, {"-purpose", "sslclient"});
        EXPECT_EQ(r.exit_code.value_or(-1), 0) << all_output(r);
    }
    {
        auto r = verify(pki.ca, pki.wrong_server.cert);
        EXPECT_NE(r.exit_code.value_or(0), 0) << "signed by the wrong CA, yet verified";
        r = verify(pki.wrong_ca, pki.wrong_server.cert);
        EXPECT_EQ(r.exit_code.value_or(-1), 0) << all_output(r);
    }
    {
        auto r = verify(pki.ca, pki.expired.cert);
        EXPECT_NE(r.exit_code.value_or(0), 0);
        EXPECT_NE(all_output(r).find("expired"), std::string::npos) << all_output(r);
    }
    // Names, serials and dates as documented.
    auto show = [&](const Cert& c) {
        auto r =
            run_command("/usr/bin/openssl", {"x509", "-in", c.cert, "-noout", "-serial", "-subject",
                                             "-enddate", "-ext", "subjectAltName"});
        return all_output(r);
    };
    EXPECT_NE(show(pki.server).find("serial=1001"), std::string::npos) << show(pki.server);
    EXPECT_NE(show(pki.server).find("IP Address:127.0.0.1"), std::string::npos);
    EXPECT_NE(show(pki.server).find("DNS:localhost"), std::string::npos);
    EXPECT_NE(show(pki.other).find("DNS:other.test"), std::string::npos);
    EXPECT_NE(show(pki.expired).find("notAfter=Jan  1 00:00:00 2020 GMT"), std::string::npos)
        << show(pki.expired);
    EXPECT_NE(show(pki.expired).find("serial=2001"), std::string::npos);
    // Expiring: still valid now, not any more in 6 days.
    {
        auto now_ok = run_command("/usr/bin/openssl",
                                  {"x509", "-in", pki.expiring.cert, "-noout", "-checkend", "0"});
        auto in_6d = run_command("/usr/bin/openssl", {"x509", "-in", pki.expiring.cert, "-noout",
                                                      "-checkend", std::to_string(6 * 86400)});
        EXPECT_EQ(now_ok.exit_code.value_or(-1), 0);
        EXPECT_EQ(in_6d.exit_code.value_or(-1), 1);
    }
    // The stray key matches no certificate.
    auto pub_of_cert =
        run_command("/usr/bin/openssl", {"x509", "-in", pki.server.cert, "-noout", "-pubkey"});
    auto pub_of_stray = run_command("/usr/bin/openssl", {"pkey", "-in", pki.stray_key, "-pubout"});
    auto pub_of_key = run_command("/usr/bin/openssl", {"pkey", "-in", pki.server.key, "-pubout"});
    EXPECT_EQ(join(pub_of_cert.out), join(pub_of_key.out));
    EXPECT_NE(join(pub_of_cert.out), join(pub_of_stray.out));
}

// ================================================================== mock server HTTPS

TEST(TlsMockServer, ServesHttpsWithItsCertificate) {
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    TlsMock mock(pki, "tm", pki.server);
    ASSERT_TRUE(mock.ok());
    std::string port = std::to_string(mock.port());

    auto r = curl({"--cacert", pki.ca, "--resolve", "localhost:" + port + ":127.0.0.1",
                   "https://localhost:" + port + "/health"});
    EXPECT_EQ(r.exit_code.value_or(-1), 0) << all_output(r);
    EXPECT_EQ(join(r.out), "{\"status\":\"ok\"}\n");

    r = curl({"--cacert", pki.wrong_ca, "https://127.0.0.1:" + port + "/health"});
    EXPECT_EQ(r.exit_code.value_or(-1), 60) << "curl trusted a server of another CA\n"
                                            << all_output(r);

    // The echo endpoint reports the TLS side of the connection.
    TlsInfo info;
    std::string err;
    auto e = tls_request_once(mock.port(), trusting(pki),
                              http_request("POST", "/mock/echo", {}, "hello"), &err, &info);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(info.peer_serial, "1001");
    auto j = e->json();
    ASSERT_TRUE(j && j->get("tls")) << e->body;
    EXPECT_EQ(j->get("tls")->get("sni")->str, "localhost");
    EXPECT_EQ(j->get("tls")->get("client_subject")->type, Json::Type::null);
    EXPECT_EQ(j->get("body_bytes")->as_int(), 5);

    // Plain HTTP to the HTTPS port is not answered.
    std::string why;
    auto plain = request_once(mock.port(), http_request("GET", "/health"), "", 3s, &why);
    EXPECT_FALSE(plain && plain->status == 200);
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_GE(mock.counter(*s, "tls_handshake_errors"), 2) << s->get("id")->str;
}

TEST(TlsMockServer, StreamsEventByEventAndNoticesHangUps) {
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    TlsMock mock(pki, "tm", pki.server);
    ASSERT_TRUE(mock.ok());

    TlsConn c;
    ASSERT_TRUE(c.connect(mock.port(), trusting(pki))) << c.error();
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(8, 60)));
    auto s = c.read_stream(sent, 10s);
    ASSERT_TRUE(s.ok) << s.error;
    ASSERT_EQ(s.token_events().size(), 8u);
    EXPECT_TRUE(s.saw_done());
    std::set<std::size_t> reads;
    for (const auto* e : s.token_events()) reads.insert(e->recv_index);
    EXPECT_EQ(reads.size(), 8u) << "events were batched";
    EXPECT_GT(ms_between(s.token_events().front()->at, s.token_events().back()->at), 7 * 60 * 0.8);

    // Keep-alive: a second request on the same TLS connection, then the
    // client leaves in the middle of a stream.
    sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(50, 100)));
    StreamReader rd(sent);
    ASSERT_TRUE(c.read_into(rd, 10s, 2)) << rd.result().error;
    auto closed_at = Clock::now();
    c.close_with_reset();
    std::optional<Json> st;
    for (int i = 0; i < 100; ++i) {
        st = mock.stats();
        if (st && mock.counter(*st, "streams_cancelled") >= 1) break;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(st);
    EXPECT_EQ(mock.counter(*st, "streams_cancelled"), 1);
    EXPECT_EQ(mock.counter(*st, "streams_completed"), 1);
    double noticed_ms = (static_cast<double>(st->get("last_peer_close_ns")->as_int()) -
                         static_cast<double>(steady_ns(closed_at))) /
                        1e6;
    std::cout << "mock noticed the TLS client's hang-up after " << noticed_ms << " ms\n";
    EXPECT_LT(noticed_ms, 100.0);
    EXPECT_EQ(mock.counter(*st, "connections_accepted"), 1);
}

TEST(TlsMockServer, RequiresAClientCertificateWhenGivenAClientCa) {
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    TlsMock mock(pki, "tm", pki.server, {"--tls-client-ca", pki.ca}, true);
    ASSERT_TRUE(mock.ok());

    std::string err;
    auto no_cert =
        tls_request_once(mock.port(), trusting(pki), http_request("GET", "/health"), &err);
    EXPECT_FALSE(no_cert.has_value()) << "served a client without a certificate";

    TlsOptions with = trusting(pki);
    with.cert_file = pki.client.cert;
    with.key_file = pki.client.key;
    auto r = tls_request_once(mock.port(), with, http_request("POST", "/mock/echo", {}, ""), &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    auto j = r->json();
    ASSERT_TRUE(j && j->get("tls"));
    EXPECT_EQ(j->get("tls")->get("client_subject")->str, "CN=dsgw test client");

    // A client certificate from another CA is refused.
    TlsOptions wrong = trusting(pki);
    wrong.cert_file = pki.wrong_server.cert;
    wrong.key_file = pki.wrong_server.key;
    EXPECT_FALSE(tls_request_once(mock.port(), wrong, http_request("GET", "/health"), &err));
}

TEST(TlsMockServer, BadTlsFlags) {
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    auto r = run_command(mock_bin(), {"--tls-cert", pki.server.cert});
    EXPECT_EQ(r.exit_code.value_or(-1), 2) << all_output(r);
    r = run_command(mock_bin(), {"--tls-client-ca", pki.ca});
    EXPECT_EQ(r.exit_code.value_or(-1), 2) << all_output(r);
    r = run_command(mock_bin(), {"--tls-cert", pki.server.cert, "--tls-key", pki.stray_key});
    EXPECT_EQ(r.exit_code.value_or(-1), 3) << all_output(r);
    EXPECT_NE(r.err_text().find("does not match"), std::string::npos) << r.err_text();
    r = run_command(mock_bin(), {"--tls-cert", "/nonexistent.pem", "--tls-key", pki.server.key});
    EXPECT_EQ(r.exit_code.value_or(-1), 3) << all_output(r);
    EXPECT_NE(r.err_text().find("/nonexistent.pem"), std::string::npos) << r.err_text();
}

// ================================================================== --check-config

class TlsCheckConfig : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(pki_.ok()) << pki_.error(); }
    RunResult check(const std::string& yaml) {
        std::string path = dir_.write("gateway.yaml", yaml);
        return run_command(gateway_bin(), {"--check-config", "--config", path});
    }
    static std::string base() { return basic_config({"127.0.0.1:9001"}).yaml(); }
    TestPki pki_;
    TempDir dir_;
};

TEST_F(TlsCheckConfig, ValidTlsConfigPasses) {
    std::string yaml = with_listener_tls(
        base(), "certificates: [{" + pair_yaml(pki_.server) + "}, {" + pair_yaml(pki_.other) +
                    "}], min_version: \"1.3\", client_ca: " + q(pki_.ca) +
                    ", verify_client: optional");
    yaml =
        with_upstream_tls(yaml, "{ca: " + q(pki_.ca) + ", server_name: localhost, verify: true, " +
                                    pair_yaml(pki_.client) + "}");
    auto r = check(yaml);
    EXPECT_EQ(r.exit_code.value_or(-1), 0) << r.err_text() << yaml;
    EXPECT_TRUE(lines_with(r.err, {"warning"}).empty()) << r.err_text();

    yaml = with_upstream_tls(with_listener_tls(base(), pair_yaml(pki_.server)), "true");
    r = check(yaml);
    EXPECT_EQ(r.exit_code.value_or(-1), 0) << r.err_text() << yaml;
}

TEST_F(TlsCheckConfig, ExpiredCertificateIsAnErrorWithItsKeyPath) {
    auto r = check(with_listener_tls(base(), pair_yaml(pki_.expired)));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    auto l = lines_with(r.err, {"listeners[0].tls.certificate: ", "expired"});
    EXPECT_EQ(l.size(), 1u) << r.err_text();
    if (!l.empty()) {
        EXPECT_NE(l[0].find(pki_.expired.cert), std::string::npos) << l[0];
        EXPECT_NE(l[0].find("2020"), std::string::npos) << "no expiry date: " << l[0];
    }
}

TEST_F(TlsCheckConfig, CertificateExpiringSoonIsAWarning) {
    auto r = check(with_listener_tls(base(), pair_yaml(pki_.expiring)));
    EXPECT_EQ(r.exit_code.value_or(-1), 0) << r.err_text();
    auto l = lines_with(r.err, {"warning: ", "listeners[0].tls.certificate"});
    EXPECT_EQ(l.size(), 1u) << r.err_text();
    if (!l.empty()) {
        EXPECT_EQ(l[0].rfind("warning: ", 0), 0u)
            << "a warning line starts with \"warning: \": " << l[0];
        EXPECT_NE(l[0].find(pki_.expiring.cert), std::string::npos) << l[0];
    }
    // An expiring client certificate for an upstream is warned about too.
    Cert soon = pki_.expiring;
    auto up = check(with_upstream_tls(base(), "{ca: " + q(pki_.ca) + ", " + pair_yaml(soon) + "}"));
    EXPECT_EQ(up.exit_code.value_or(-1), 0) << up.err_text();
    EXPECT_EQ(lines_with(up.err, {"warning: ", "upstreams[0].tls.certificate"}).size(), 1u)
        << up.err_text();
}

TEST_F(TlsCheckConfig, KeyMismatchNamesThePrivateKey) {
    auto r = check(with_listener_tls(base(), pair_yaml(pki_.server.cert, pki_.stray_key)));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    auto l = lines_with(r.err, {"listeners[0].tls.private_key: "});
    EXPECT_EQ(l.size(), 1u) << r.err_text();
    if (!l.empty()) {
        EXPECT_NE(l[0].find(pki_.stray_key), std::string::npos) << l[0];
    }

    // In a list, the index is part of the path; an upstream client key too.
    r = check(with_upstream_tls(
        with_listener_tls(base(), "certificates: [{" + pair_yaml(pki_.server) + "}, {" +
                                      pair_yaml(pki_.other.cert, pki_.server.key) + "}]"),
        "{" + pair_yaml(pki_.client.cert, pki_.stray_key) + "}"));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.certificates[1].private_key: "}).size(), 1u)
        << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"upstreams[0].tls.private_key: "}).size(), 1u) << r.err_text();
    EXPECT_TRUE(lines_with(r.err, {"certificates[0]"}).empty()) << r.err_text();
}

TEST_F(TlsCheckConfig, UnreadableFilesAreErrors) {
    const std::string missing = dir_.path() + "/missing.pem";
    const std::string garbage = dir_.write("garbage.pem", "not a certificate\n");
    std::string yaml = with_listener_tls(
        base(), pair_yaml(missing, pki_.server.key) + ", client_ca: " + q(garbage));
    yaml = with_upstream_tls(yaml, "{ca: " + q(dir_.path() + "/no-ca.pem") + "}");
    auto r = check(yaml);
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    auto cert = lines_with(r.err, {"listeners[0].tls.certificate: ", missing});
    EXPECT_EQ(cert.size(), 1u) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.client_ca: ", garbage}).size(), 1u)
        << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"upstreams[0].tls.ca: ", "no-ca.pem"}).size(), 1u) << r.err_text();

    // An unreadable key, and a key file that holds no key.
    r = check(with_listener_tls(base(), pair_yaml(pki_.server.cert, garbage)));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.private_key: ", garbage}).size(), 1u)
        << r.err_text();

    // Permission denied (only meaningful when not running as root).
    if (geteuid() != 0) {
        std::string locked = pki_.copy(pki_.server.key, "locked.key");
        std::filesystem::permissions(locked, std::filesystem::perms::none);
        r = check(with_listener_tls(base(), pair_yaml(pki_.server.cert, locked)));
        EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
        EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.private_key: ", locked}).size(), 1u)
            << r.err_text();
    }
}

TEST_F(TlsCheckConfig, TlsKeysAreChecked) {
    // verify_client needs client_ca; min_version is "1.2" or "1.3"; unknown keys are errors.
    auto r = check(with_listener_tls(
        base(), pair_yaml(pki_.server) + ", verify_client: required, min_version: \"1.1\""));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.verify_client: "}).size(), 1u) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.min_version: "}).size(), 1u) << r.err_text();

    r = check(with_listener_tls(base(), pair_yaml(pki_.server) + ", cipher: RC4"));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"listeners[0].tls.cipher: "}).size(), 1u) << r.err_text();

    // Both forms at once, or neither.
    r = check(with_listener_tls(
        base(), pair_yaml(pki_.server) + ", certificates: [{" + pair_yaml(pki_.other) + "}]"));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    r = check(with_listener_tls(base(), "min_version: \"1.2\""));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_FALSE(lines_with(r.err, {"listeners[0].tls.certificate"}).empty()) << r.err_text();

    // upstreams[].tls: a certificate needs its key.
    r = check(with_upstream_tls(base(), "{certificate: " + q(pki_.client.cert) + "}"));
    EXPECT_EQ(r.exit_code.value_or(-1), 1) << r.err_text();
    EXPECT_EQ(lines_with(r.err, {"upstreams[0].tls.private_key: "}).size(), 1u) << r.err_text();
}

// ================================================================== listener TLS

class TlsListener : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(pki_.ok()) << pki_.error();
        mock_ = std::make_unique<MockServer>("up");
        ASSERT_TRUE(mock_->ok());
    }
    // Starts the gateway with `tls: {FLOW}` on its listener.
    bool start(const std::string& flow, GatewayConfig cfg = GatewayConfig{}) {
        if (cfg.upstream().servers.empty())
            cfg.upstream().servers.push_back({mock_->address(), -1});
        return gw_.start(with_listener_tls(cfg.yaml(), flow));
    }
    std::string url(const std::string& path, const std::string& host = "localhost") const {
        return "https://" + host + ":" + std::to_string(gw_.port()) + path;
    }
    std::string resolve() const { return "localhost:" + std::to_string(gw_.port()) + ":127.0.0.1"; }
    // openssl s_client output for one handshake (no request).
    std::string handshake_text(const std::vector<std::string>& args) {
        std::vector<std::string> a = {"-CAfile", pki_.ca};
        a.insert(a.end(), args.begin(), args.end());
        return all_output(s_client(gw_.port(), a));
    }

    TestPki pki_;
    std::unique_ptr<MockServer> mock_;
    Gateway gw_;
};

TEST_F(TlsListener, CurlWithTheRightCaSucceeds) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    auto r = curl({"--cacert", pki_.ca, "--resolve", resolve(), "-H",
                   "Content-Type: application/json", "-d", chat_body(false), "-w",
                   "\\n%{http_code} %{ssl_verify_result}", url("/v1/chat/completions")});
    ASSERT_EQ(r.exit_code.value_or(-1), 0) << all_output(r) << gw_.logs();
    ASSERT_GE(r.out.size(), 2u);
    EXPECT_EQ(r.out.back(), "200 0");
    EXPECT_NE(r.out.front().find("chat.completion"), std::string::npos) << r.out.front();

    // By IP address too (the certificate has IP:127.0.0.1).
    r = curl({"--cacert", pki_.ca, "-w", "%{http_code}", "-o", "/dev/null",
              url("/v1/models", "127.0.0.1")});
    EXPECT_EQ(r.exit_code.value_or(-1), 0) << all_output(r);
    EXPECT_EQ(join(r.out), "200\n");

    // The upstream is told the client came over https.
    std::string err;
    auto e =
        tls_request_once(gw_.port(), trusting(pki_),
                         http_request("GET", "/mock/echo", {}, "", "HTTP/1.1", "localhost"), &err);
    ASSERT_TRUE(e) << err;
    bool proto_https = false;
    if (auto j = e->json())
        if (const Json* h = j->get("headers"))
            for (const auto& kv : h->arr)
                if (kv.arr.size() == 2 && to_lower(kv.arr[0].str) == "x-forwarded-proto")
                    proto_https = kv.arr[1].str == "https";
    EXPECT_TRUE(proto_https) << "X-Forwarded-Proto is not https: " << e->body;
}

TEST_F(TlsListener, WrongCaFails) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    auto r = curl({"--cacert", pki_.wrong_ca, "--resolve", resolve(), url("/v1/models")});
    EXPECT_EQ(r.exit_code.value_or(-1), 60) << all_output(r);
    // ... and the gateway still serves the next client.
    r = curl({"--cacert", pki_.ca, "--resolve", resolve(), "-o", "/dev/null", "-w", "%{http_code}",
              url("/v1/models")});
    EXPECT_EQ(join(r.out), "200\n") << all_output(r);
}

TEST_F(TlsListener, Tls11IsRefusedByTheServer) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    // SECLEVEL=0 lets OpenSSL 3 offer TLS 1.1 at all; the refusal must come
    // from the gateway (a protocol_version alert), not from our own client.
    std::string out =
        handshake_text({"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost"});
    EXPECT_EQ(out.find("no protocols available"), std::string::npos)
        << "the client refused TLS 1.1 by itself:\n"
        << out;
    // (s_client prints "Protocol : TLSv1.1" for what it offered even when the
    // handshake failed: success is a cipher on the "New," line.)
    EXPECT_NE(out.find("New, (NONE), Cipher is (NONE)"), std::string::npos)
        << "TLS 1.1 handshake completed:\n"
        << out;
    EXPECT_NE(out.find("alert protocol version"), std::string::npos)
        << "no protocol_version alert from the gateway:\n"
        << out;

    // The same through the in-process client.
    TlsOptions o = trusting(pki_);
    o.min_version = TLS1_1_VERSION;
    o.max_version = TLS1_1_VERSION;
    o.security_level = 0;
    o.cipher_list = "DEFAULT@SECLEVEL=0";
    TlsConn c;
    EXPECT_FALSE(c.connect(gw_.port(), o)) << "TLS 1.1 handshake succeeded: " << c.info().version;
    EXPECT_NE(c.error().find("protocol version"), std::string::npos) << c.error();
}

TEST_F(TlsListener, DefaultsAcceptTls12AndTls13WithModernCiphersOnly) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TlsOptions o = trusting(pki_);
    o.max_version = TLS1_2_VERSION;
    TlsConn c12;
    ASSERT_TRUE(c12.connect(gw_.port(), o)) << c12.error();
    EXPECT_EQ(c12.info().version, "TLSv1.2");
    EXPECT_NE(c12.info().cipher.find("ECDHE"), std::string::npos) << c12.info().cipher;
    ASSERT_TRUE(c12.send_all(http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost")));
    auto r = c12.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);

    TlsConn c13;
    ASSERT_TRUE(c13.connect(gw_.port(), trusting(pki_))) << c13.error();
    EXPECT_EQ(c13.info().version, "TLSv1.3");

    // Mozilla intermediate: no CBC, no static RSA key exchange.
    o.cipher_list = "AES128-SHA:AES256-SHA:ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256";
    TlsConn weak;
    EXPECT_FALSE(weak.connect(gw_.port(), o))
        << "TLS 1.2 with an obsolete cipher was accepted: " << weak.info().cipher;
}

TEST_F(TlsListener, MinVersion13RefusesTls12) {
    ASSERT_TRUE(start(pair_yaml(pki_.server) + ", min_version: \"1.3\"")) << gw_.logs();
    std::string out = handshake_text({"-tls1_2", "-servername", "localhost"});
    EXPECT_NE(out.find("New, (NONE), Cipher is (NONE)"), std::string::npos)
        << "TLS 1.2 handshake completed:\n"
        << out;
    EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;

    out = handshake_text({"-tls1_3", "-servername", "localhost"});
    EXPECT_TRUE(std::regex_search(out, std::regex(R"(New, TLSv1\.3)"))) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
}

TEST_F(TlsListener, AlpnSelectsHttp11) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    std::string out = handshake_text({"-alpn", "h2,http/1.1", "-servername", "localhost"});
    EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;

    TlsOptions o = trusting(pki_);
    o.alpn = {"h2", "http/1.1"};
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), o)) << c.error();
    EXPECT_EQ(c.info().alpn, "http/1.1");
    // h2 alone is not agreed to, and the handshake still succeeds (or is
    // refused with no_application_protocol): never "h2".
    o.alpn = {"h2"};
    TlsConn h2;
    if (h2.connect(gw_.port(), o)) {
        EXPECT_EQ(h2.info().alpn, "");
    }
    // Without ALPN: fine.
    TlsConn none;
    ASSERT_TRUE(none.connect(gw_.port(), trusting(pki_))) << none.error();
    EXPECT_EQ(none.info().alpn, "");
}

TEST_F(TlsListener, SniPicksTheCertificate) {
    ASSERT_TRUE(
        start("certificates: [{" + pair_yaml(pki_.server) + "}, {" + pair_yaml(pki_.other) + "}]"))
        << gw_.logs();
    std::string out = handshake_text({"-servername", "other.test"});
    EXPECT_TRUE(subject_is(out, "other.test")) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;

    out = handshake_text({"-servername", "localhost"});
    EXPECT_TRUE(subject_is(out, "localhost")) << out;

    // An unknown name, and no name at all: the first certificate.
    out = handshake_text({"-servername", "unknown.test"});
    EXPECT_TRUE(subject_is(out, "localhost")) << out;
    out = handshake_text({"-noservername"});
    EXPECT_TRUE(subject_is(out, "localhost")) << out;

    // Requests work on the second certificate, with its name verified.
    std::string err;
    TlsInfo info;
    auto r = tls_request_once(gw_.port(), trusting(pki_, "other.test"),
                              http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "other.test"),
                              &err, &info);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(info.peer_serial, "1003");
    // Over TLS 1.2 as well (the SNI callback runs in both).
    TlsOptions o12 = trusting(pki_, "other.test");
    o12.max_version = TLS1_2_VERSION;
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), o12)) << c.error();
    EXPECT_EQ(c.info().peer_subject, "CN=other.test");
}

TEST_F(TlsListener, RequiredClientCertificateIsEnforced) {
    ASSERT_TRUE(
        start(pair_yaml(pki_.server) + ", client_ca: " + q(pki_.ca) + ", verify_client: required"))
        << gw_.logs();
    const std::string req = http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost");
    // No certificate: with TLS 1.3 the client's handshake may complete before
    // the server's alert arrives, so what matters is that no response comes.
    {
        std::string err;
        auto r = tls_request_once(gw_.port(), trusting(pki_), req, &err);
        EXPECT_FALSE(r.has_value()) << "answered " << r->status << " without a client certificate";
        auto c = curl({"--cacert", pki_.ca, "--resolve", resolve(), url("/v1/models")});
        EXPECT_NE(c.exit_code.value_or(0), 0) << all_output(c);
    }
    // A certificate from another CA.
    {
        TlsOptions o = trusting(pki_);
        o.cert_file = pki_.wrong_server.cert;
        o.key_file = pki_.wrong_server.key;
        std::string err;
        EXPECT_FALSE(tls_request_once(gw_.port(), o, req, &err).has_value());
    }
    // The right one: 200, and the access log names the client.
    {
        auto c = curl({"--cacert", pki_.ca, "--cert", pki_.client.cert, "--key", pki_.client.key,
                       "--resolve", resolve(), "-o", "/dev/null", "-w", "%{http_code}",
                       url("/v1/models?mtls=1")});
        EXPECT_EQ(join(c.out), "200\n") << all_output(c) << gw_.logs();
        auto line = access_line(gw_.process(), "/v1/models");
        ASSERT_TRUE(line) << gw_.logs();
        const Json* cc = line->get("client_cert");
        ASSERT_NE(cc, nullptr) << "access log has no client_cert field";
        // RFC 2253, as documented in tls/context.hpp ("CN=team-a,O=Example").
        EXPECT_EQ(cc->str, "CN=dsgw test client");
    }
    // A resumed session still carries the client's identity.
    {
        TlsOptions o = trusting(pki_);
        o.cert_file = pki_.client.cert;
        o.key_file = pki_.client.key;
        TlsConn a;
        ASSERT_TRUE(a.connect(gw_.port(), o)) << a.error();
        ASSERT_TRUE(
            a.send_all(http_request("GET", "/health?first", {}, "", "HTTP/1.1", "localhost")));
        ASSERT_TRUE(a.read_response());
        TlsOptions again = trusting(pki_);  // no certificate offered this time
        again.session = a.session();
        TlsConn b;
        ASSERT_TRUE(b.connect(gw_.port(), again)) << b.error();
        EXPECT_TRUE(b.info().session_reused);
        ASSERT_TRUE(
            b.send_all(http_request("GET", "/health?resumed", {}, "", "HTTP/1.1", "localhost")));
        std::string err;
        auto r = b.read_response(5s, false, &err);
        ASSERT_TRUE(r) << "resumed mTLS session refused: " << err;
        EXPECT_EQ(r->status, 200);
        auto line = access_line(gw_.process(), "/health?resumed");
        ASSERT_TRUE(line) << gw_.logs();
        ASSERT_NE(line->get("client_cert"), nullptr);
        EXPECT_NE(line->get("client_cert")->str.find("CN=dsgw test client"), std::string::npos)
            << "resumed session lost the client certificate";
    }
}

TEST_F(TlsListener, OptionalClientCertificate) {
    ASSERT_TRUE(
        start(pair_yaml(pki_.server) + ", client_ca: " + q(pki_.ca) + ", verify_client: optional"))
        << gw_.logs();
    std::string err;
    auto r =
        tls_request_once(gw_.port(), trusting(pki_),
                         http_request("GET", "/health", {}, "", "HTTP/1.1", "localhost"), &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    auto line = access_line(gw_.process(), "/health");
    ASSERT_TRUE(line) << gw_.logs();
    ASSERT_NE(line->get("client_cert"), nullptr);
    EXPECT_EQ(line->get("client_cert")->type, Json::Type::null);

    TlsOptions o = trusting(pki_);
    o.cert_file = pki_.client.cert;
    o.key_file = pki_.client.key;
    r = tls_request_once(gw_.port(), o,
                         http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost"), &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    line = access_line(gw_.process(), "/v1/models");
    ASSERT_TRUE(line && line->get("client_cert")) << gw_.logs();
    EXPECT_NE(line->get("client_cert")->str.find("CN=dsgw test client"), std::string::npos);

    // A certificate that does not verify is still refused when presented.
    o.cert_file = pki_.wrong_server.cert;
    o.key_file = pki_.wrong_server.key;
    EXPECT_FALSE(tls_request_once(gw_.port(), o, http_request("GET", "/health"), &err).has_value());
}

TEST_F(TlsListener, SessionIsResumed) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TempDir dir;
    const std::string sess = dir.path() + "/session.pem";
    const std::string req = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (const char* version : {"-tls1_3", "-tls1_2"}) {
        std::string first = all_output(s_client(gw_.port(),
                                                {version, "-CAfile", pki_.ca, "-servername",
                                                 "localhost", "-ign_eof", "-sess_out", sess},
                                                req));
        EXPECT_TRUE(std::regex_search(first, std::regex(R"(New, TLSv1\.[23])"))) << first;
        EXPECT_NE(first.find("HTTP/1.1 200"), std::string::npos) << first;
        std::string second = all_output(s_client(
            gw_.port(),
            {version, "-CAfile", pki_.ca, "-servername", "localhost", "-ign_eof", "-sess_in", sess},
            req));
        EXPECT_TRUE(std::regex_search(second, std::regex(R"(Reused, TLSv1\.[23])")))
            << version << ": session not resumed:\n"
            << second;
        EXPECT_NE(second.find("HTTP/1.1 200"), std::string::npos) << second;
    }

    // In-process, with TLS 1.3 tickets.
    TlsConn a;
    ASSERT_TRUE(a.connect(gw_.port(), trusting(pki_))) << a.error();
    ASSERT_TRUE(a.send_all(http_request("GET", "/health", {}, "", "HTTP/1.1", "localhost")));
    ASSERT_TRUE(a.read_response());
    TlsOptions o = trusting(pki_);
    o.session = a.session();
    ASSERT_TRUE(o.session);
    TlsConn b;
    ASSERT_TRUE(b.connect(gw_.port(), o)) << b.error();
    EXPECT_TRUE(b.info().session_reused);
    ASSERT_TRUE(b.send_all(http_request("GET", "/health", {}, "", "HTTP/1.1", "localhost")));
    auto r = b.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);

    // Over TLS 1.2 in-process as well.
    TlsOptions o12 = trusting(pki_);
    o12.max_version = TLS1_2_VERSION;
    TlsConn c12;
    ASSERT_TRUE(c12.connect(gw_.port(), o12)) << c12.error();
    o12.session = c12.session();
    TlsConn d12;
    ASSERT_TRUE(d12.connect(gw_.port(), o12)) << d12.error();
    EXPECT_TRUE(d12.info().session_reused) << "TLS 1.2 session not resumed";
}

TEST_F(TlsListener, SessionIsResumedOnTheSniCertificate) {
    ASSERT_TRUE(
        start("certificates: [{" + pair_yaml(pki_.server) + "}, {" + pair_yaml(pki_.other) + "}]"))
        << gw_.logs();
    TlsConn a;
    ASSERT_TRUE(a.connect(gw_.port(), trusting(pki_, "other.test"))) << a.error();
    ASSERT_TRUE(a.send_all(http_request("GET", "/health", {}, "", "HTTP/1.1", "other.test")));
    ASSERT_TRUE(a.read_response());
    TlsOptions o = trusting(pki_, "other.test");
    o.session = a.session();
    TlsConn b;
    ASSERT_TRUE(b.connect(gw_.port(), o)) << b.error();
    EXPECT_TRUE(b.info().session_reused);
    ASSERT_TRUE(b.send_all(http_request("GET", "/health", {}, "", "HTTP/1.1", "other.test")));
    auto r = b.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(TlsListener, StreamArrivesEventByEvent) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    constexpr int kTokens = 20, kDelayMs = 50;
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), trusting(pki_))) << c.error();
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(kTokens, kDelayMs)));
    auto s = c.read_stream(sent, 20s);
    ASSERT_TRUE(s.ok) << s.error;
    EXPECT_EQ(s.response.status, 200);
    auto toks = s.token_events();
    ASSERT_EQ(toks.size(), static_cast<std::size_t>(kTokens));
    EXPECT_TRUE(s.saw_done());
    std::set<std::size_t> reads;
    for (const auto* e : toks) reads.insert(e->recv_index);
    EXPECT_EQ(reads.size(), static_cast<std::size_t>(kTokens)) << "events were batched";
    std::vector<double> gaps;
    std::string text;
    for (std::size_t k = 1; k < toks.size(); ++k) {
        gaps.push_back(ms_between(toks[k - 1]->at, toks[k]->at));
        text += std::to_string(static_cast<int>(gaps.back())) + " ";
    }
    std::cout << "TLS stream gaps (ms): " << text << "| first event after "
              << ms_between(sent, toks.front()->at) << " ms\n";
    EXPECT_GT(median(gaps), 0.7 * kDelayMs) << text;
    EXPECT_LT(median(gaps), 2.0 * kDelayMs) << text;
    EXPECT_LT(ms_between(sent, toks.front()->at), 0.5 * (kTokens - 1) * kDelayMs)
        << "the first event waited for the stream";
}

TEST_F(TlsListener, ClientHangUpOverTlsStopsTheUpstream) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), trusting(pki_))) << c.error();
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(100, 100)));
    StreamReader rd(sent);
    ASSERT_TRUE(c.read_into(rd, 10s, 2)) << rd.result().error;
    auto closed_at = Clock::now();
    c.close();  // close_notify, then FIN
    auto st = mock_->wait_stats([](const MockStats& s) { return s.streams_cancelled >= 1; }, 5s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->streams_cancelled, 1) << "the upstream kept generating";
    double ms =
        (static_cast<double>(st->last_peer_close_ns) - static_cast<double>(steady_ns(closed_at))) /
        1e6;
    std::cout << "upstream closed " << ms << " ms after the TLS client left\n";
    EXPECT_LT(ms, 100.0);

    // Same with a reset and no close_notify.
    ASSERT_TRUE(mock_->reset());
    TlsConn d;
    ASSERT_TRUE(d.connect(gw_.port(), trusting(pki_))) << d.error();
    ASSERT_TRUE(d.send_all(stream_request(100, 100)));
    StreamReader rd2(Clock::now());
    ASSERT_TRUE(d.read_into(rd2, 10s, 2)) << rd2.result().error;
    d.close_with_reset();
    st = mock_->wait_stats([](const MockStats& s) { return s.streams_cancelled >= 1; }, 5s);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->streams_cancelled, 1);
}

TEST_F(TlsListener, HandshakeHasADeadline) {
    GatewayConfig cfg;
    cfg.header_timeout = "1s";
    ASSERT_TRUE(start(pair_yaml(pki_.server), cfg)) << gw_.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    auto t0 = Clock::now();
    auto cr = c.wait_close(10s);
    EXPECT_TRUE(cr.closed) << "a client that never sends a ClientHello is kept open";
    std::cout << "silent client closed after " << ms_between(t0, Clock::now()) << " ms\n";
    EXPECT_LT(ms_between(t0, Clock::now()), 5000.0);
}

TEST_F(TlsListener, PlainHttpOnATlsListenerIsNotServed) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    std::string err;
    auto r = request_once(gw_.port(), http_request("GET", "/v1/models"), "", 5s, &err);
    EXPECT_FALSE(r && r->status == 200) << "plain HTTP answered on a TLS listener";
    // ... and TLS clients are still served.
    auto ok =
        tls_request_once(gw_.port(), trusting(pki_),
                         http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost"), &err);
    ASSERT_TRUE(ok) << err;
    EXPECT_EQ(ok->status, 200);
}

TEST_F(TlsListener, Http10StreamEndsWithCloseNotify) {
    // A close-delimited body over TLS is complete only if close_notify ends it
    // (a bare FIN could be a truncation attack).
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), trusting(pki_))) << c.error();
    std::string req = http_request("POST", "/v1/chat/completions",
                                   {{"Content-Type", "application/json"},
                                    {"X-Mock-Tokens", "5"},
                                    {"X-Mock-Token-Delay-Ms", "20"}},
                                   chat_body(true), "HTTP/1.0", "localhost");
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(req));
    auto s = c.read_stream(sent, 10s);
    ASSERT_TRUE(s.ok) << s.error;
    EXPECT_TRUE(s.response.close_delimited);
    EXPECT_EQ(s.token_events().size(), 5u);
    EXPECT_TRUE(s.saw_done());
    EXPECT_TRUE(c.saw_close_notify()) << "response ended by a TCP close without close_notify";
}

TEST_F(TlsListener, PipelinedRequestsAreAnsweredInOrder) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TlsConn c;
    ASSERT_TRUE(c.connect(gw_.port(), trusting(pki_))) << c.error();
    std::string two = http_request("GET", "/mock/echo?n=1", {}, "", "HTTP/1.1", "localhost") +
                      http_request("GET", "/mock/echo?n=2", {}, "", "HTTP/1.1", "localhost");
    ASSERT_TRUE(c.send_all(two));
    for (const char* target : {"/mock/echo?n=1", "/mock/echo?n=2"}) {
        std::string err;
        auto r = c.read_response(10s, false, &err);
        ASSERT_TRUE(r) << target << ": " << err;
        EXPECT_EQ(r->status, 200);
        auto j = r->json();
        ASSERT_TRUE(j && j->get("target"));
        EXPECT_EQ(j->get("target")->str, target);
    }
}

// A TLS 1.3 KeyUpdate that asks for the gateway's own: the gateway reads it
// with the next request, and its SSL_read has to write its KeyUpdate from
// within the read. The connection goes on under the new keys both ways.
TEST_F(TlsListener, KeyUpdatesAreAnsweredAndTheConnectionGoesOn) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    TlsConn c;
    auto opt = trusting(pki_);
    opt.min_version = TLS1_3_VERSION;
    ASSERT_TRUE(c.connect(gw_.port(), opt)) << c.error();
    for (int i = 0; i < 4; ++i) {
        const std::string target = "/mock/echo?n=" + std::to_string(i);
        ASSERT_TRUE(c.send_all(http_request("GET", target, {}, "", "HTTP/1.1", "localhost")));
        std::string err;
        auto r = c.read_response(10s, false, &err);
        ASSERT_TRUE(r) << "request " << i << ": " << err;
        EXPECT_EQ(r->status, 200);
        auto j = r->json();
        ASSERT_TRUE(j && j->get("target"));
        EXPECT_EQ(j->get("target")->str, target);
        EXPECT_EQ(c.key_updates_received(), i) << "the gateway's KeyUpdate answers";
        ASSERT_TRUE(c.request_key_update());
    }
}

// Resident memory of a process, in KiB (VmRSS of /proc/PID/status).
long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// An idle TLS keep-alive connection holds OpenSSL's state and the session,
// not buffers: OpenSSL reads and writes the socket itself and releases its
// record buffers between requests. (Asio's ssl::stream kept four 17 KiB
// buffers per connection, about 70 KiB.)
TEST_F(TlsListener, IdleKeepAliveConnectionsHoldNoBuffers) {
    ASSERT_TRUE(start(pair_yaml(pki_.server))) << gw_.logs();
    const auto request = http_request("POST", "/v1/chat/completions", {}, R"({"max_tokens":4})",
                                      "HTTP/1.1", "localhost");
    auto open_and_ask = [&](std::vector<std::unique_ptr<TlsConn>>& conns, int n) {
        for (int i = 0; i < n; ++i) {
            auto c = std::make_unique<TlsConn>();
            ASSERT_TRUE(c->connect(gw_.port(), trusting(pki_))) << c->error();
            ASSERT_TRUE(c->send_all(request));
            std::string err;
            auto r = c->read_response(10s, false, &err);
            ASSERT_TRUE(r) << err;
            ASSERT_EQ(r->status, 200);
            conns.push_back(std::move(c));
        }
    };
    std::vector<std::unique_ptr<TlsConn>> warm, idle;
    open_and_ask(warm, 20);  // the allocator's and OpenSSL's first-use costs
    const long before = rss_kib(gw_.process().pid());
    constexpr int kConns = 300;
    open_and_ask(idle, kConns);
    const long after = rss_kib(gw_.process().pid());
    ASSERT_GT(before, 0);
    const double per_conn = static_cast<double>(after - before) / kConns;
    std::cout << "resident memory per idle TLS connection: " << per_conn << " KiB\n";
    // All of them still work.
    for (auto& c : idle) ASSERT_TRUE(c->send_all(request));
    for (auto& c : idle) {
        auto r = c->read_response(10s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
#if DSGW_TEST_UNDER_ASAN
    // The gateway of this build is sanitized too: ASan's redzones, shadow
    // memory and quarantine of freed blocks (about 370 KiB per connection
    // here) are what RSS measures, not the gateway's buffers.
    GTEST_SKIP() << "memory bound not checked under ASan (measured " << per_conn
                 << " KiB per connection, mostly ASan's own)";
#endif
    EXPECT_LT(per_conn, 32.0);
}

// ------------------------------------------------------------------ reload

class TlsReload : public TlsListener {
protected:
    void SetUp() override {
        TlsListener::SetUp();
        if (HasFatalFailure()) return;
        live_cert_ = pki_.copy(pki_.server.cert, "live-cert.pem");
        live_key_ = pki_.copy(pki_.server.key, "live-key.pem");
        ASSERT_TRUE(start(pair_yaml(live_cert_, live_key_))) << gw_.logs();
        ASSERT_EQ(served_serial(gw_.port(), pki_), "1001");
    }
    // Replaces a live file the way certbot does: a new file renamed over it.
    void replace(const std::string& live, const std::string& content) {
        std::string tmp = live + ".new";
        {
            std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
            f << content;
        }
        std::filesystem::rename(tmp, live);
    }
    std::string sighup() {
        std::size_t seen = gw_.process().lines(Process::Stream::err).size();
        if (!gw_.process().signal(SIGHUP)) return "no process";
        return wait_reload(gw_.process(), seen);
    }
    std::string live_cert_, live_key_;
};

TEST_F(TlsReload, NewCertificateForNewConnectionsOpenStreamUntouched) {
    // A keep-alive connection and a stream, both opened before the reload.
    TlsConn keep;
    ASSERT_TRUE(keep.connect(gw_.port(), trusting(pki_))) << keep.error();
    ASSERT_TRUE(keep.send_all(http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost")));
    ASSERT_TRUE(keep.read_response());

    constexpr int kTokens = 20;
    TlsConn stream;
    ASSERT_TRUE(stream.connect(gw_.port(), trusting(pki_))) << stream.error();
    ASSERT_TRUE(stream.send_all(stream_request(kTokens, 100)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(stream.read_into(rd, 10s, 3)) << rd.result().error;

    replace(live_cert_, TestPki::read(pki_.server_renewed.cert));
    replace(live_key_, TestPki::read(pki_.server_renewed.key));
    ASSERT_EQ(sighup(), "reloaded") << gw_.logs();

    EXPECT_EQ(served_serial(gw_.port(), pki_), "1002") << gw_.logs();
    // The stream goes on to the end on its connection.
    EXPECT_TRUE(stream.read_into(rd, 20s)) << rd.result().error;
    EXPECT_TRUE(rd.result().ok) << rd.result().error;
    EXPECT_EQ(rd.result().token_events().size(), static_cast<std::size_t>(kTokens));
    EXPECT_TRUE(rd.result().saw_done()) << "stream cut by the reload";
    EXPECT_EQ(stream.info().peer_serial, "1001");
    // The kept-alive connection is still usable.
    ASSERT_TRUE(keep.send_all(http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost")));
    auto r = keep.read_response();
    ASSERT_TRUE(r) << "kept-alive TLS connection dropped by the reload";
    EXPECT_EQ(r->status, 200);
}

TEST_F(TlsReload, BrokenReplacementKeepsTheOldCertificate) {
    // 1. A certificate file that is not PEM.
    replace(live_cert_, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    ASSERT_EQ(sighup(), "rejected") << gw_.logs();
    auto errs = lines_with(gw_.process().lines(Process::Stream::err), {live_cert_});
    EXPECT_FALSE(errs.empty()) << "the error does not name the file:\n" << gw_.logs();
    EXPECT_EQ(served_serial(gw_.port(), pki_), "1001");

    // 2. A good certificate with a key that does not match it.
    replace(live_cert_, TestPki::read(pki_.server_renewed.cert));
    ASSERT_EQ(sighup(), "rejected") << gw_.logs();
    EXPECT_FALSE(lines_with(gw_.process().lines(Process::Stream::err), {live_key_}).empty())
        << gw_.logs();
    EXPECT_EQ(served_serial(gw_.port(), pki_), "1001");

    // 3. A missing key file.
    std::filesystem::remove(live_key_);
    ASSERT_EQ(sighup(), "rejected") << gw_.logs();
    EXPECT_EQ(served_serial(gw_.port(), pki_), "1001");

    // Still serving, with the old certificate.
    std::string err;
    auto r =
        tls_request_once(gw_.port(), trusting(pki_),
                         http_request("GET", "/v1/models", {}, "", "HTTP/1.1", "localhost"), &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);

    // Repaired: the next reload takes the new pair.
    replace(live_key_, TestPki::read(pki_.server_renewed.key));
    ASSERT_EQ(sighup(), "reloaded") << gw_.logs();
    EXPECT_EQ(served_serial(gw_.port(), pki_), "1002");
}

// ================================================================== upstream TLS

class TlsUpstream : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(pki_.ok()) << pki_.error(); }
    // A plain listener in front of `mock` with `tls: VALUE` on the upstream.
    bool start(TlsMock& mock, const std::string& value, int keepalive = -1) {
        GatewayConfig cfg = basic_config({mock.address()});
        cfg.upstream().keepalive = keepalive;
        cfg.upstream().retries = 0;
        return gw_.start(with_upstream_tls(cfg.yaml(), value));
    }
    std::optional<Response> get(const std::string& raw, std::string* err = nullptr) {
        return request_once(gw_.port(), raw, "", 10s, err);
    }
    static void expect_gateway_502(const std::optional<Response>& r) {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 502) << r->body;
        auto j = r->json();
        ASSERT_TRUE(j && j->get("error")) << r->body;
        EXPECT_EQ(j->get("error")->get("type")->str, "gateway_error") << r->body;
    }
    TestPki pki_;
    Gateway gw_;
};

TEST_F(TlsUpstream, RightCaWorks) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + "}")) << gw_.logs();
    auto r = get(plain_completion());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body << gw_.logs();
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "tu");
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_GE(mock.counter(*s, "tls_handshakes"), 1);
}

TEST_F(TlsUpstream, WrongCaIs502) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "{ca: " + q(pki_.wrong_ca) + "}")) << gw_.logs();
    expect_gateway_502(get(plain_completion()));
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(mock.counter(*s, "requests"), 0) << "a request reached an unverified server";
}

TEST_F(TlsUpstream, SystemStoreDoesNotTrustTheTestCa) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "true")) << gw_.logs();
    expect_gateway_502(get(plain_completion()));
}

TEST_F(TlsUpstream, ServerNameIsSentAndChecked) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    {
        ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + ", server_name: other.test}")) << gw_.logs();
        expect_gateway_502(get(plain_completion()));
        gw_.stop();
    }
    Gateway gw;
    GatewayConfig cfg = basic_config({mock.address()});
    ASSERT_TRUE(
        gw.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + ", server_name: localhost}")))
        << gw.logs();
    auto r = request_once(gw.port(), http_request("POST", "/mock/echo", {}, "x"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body << gw.logs();
    auto j = r->json();
    ASSERT_TRUE(j && j->get("tls")) << r->body;
    EXPECT_EQ(j->get("tls")->get("sni")->str, "localhost") << r->body;
}

TEST_F(TlsUpstream, IpAddressIsCheckedAgainstIpSanWithoutSni) {
    // No server_name: the server's address (127.0.0.1) must match the
    // certificate's IP SAN, and an IP literal is not sent as SNI (RFC 6066 §3).
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + "}")) << gw_.logs();
    auto r = get(http_request("POST", "/mock/echo", {}, "x"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body << gw_.logs();
    auto j = r->json();
    ASSERT_TRUE(j && j->get("tls")) << r->body;
    EXPECT_EQ(j->get("tls")->get("sni")->type, Json::Type::null) << r->body;

    // A certificate without 127.0.0.1 in it fails the check.
    TlsMock other(pki_, "to", pki_.other);
    ASSERT_TRUE(other.ok());
    Gateway gw;
    GatewayConfig cfg = basic_config({other.address()});
    cfg.upstream().retries = 0;
    ASSERT_TRUE(gw.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw.logs();
    auto bad = request_once(gw.port(), plain_completion());
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 502) << "certificate for other.test accepted for 127.0.0.1";
}

TEST_F(TlsUpstream, HandshakeFailureIsRetriedOnAnotherServer) {
    // The request cannot have reached a server whose handshake failed.
    TlsMock bad(pki_, "bad", pki_.wrong_server);
    TlsMock good(pki_, "good", pki_.server);
    ASSERT_TRUE(bad.ok() && good.ok());
    GatewayConfig cfg = basic_config({bad.address(), good.address()});
    cfg.upstream().retries = 1;
    ASSERT_TRUE(gw_.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw_.logs();
    for (int i = 0; i < 4; ++i) {
        auto r = get(plain_completion());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
        EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "good");
    }
    auto s = bad.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(bad.counter(*s, "requests"), 0);
    EXPECT_GE(bad.counter(*s, "tls_handshake_errors"), 1) << "the bad server was never tried";
}

TEST_F(TlsUpstream, HandshakeFailureBacksOffTheServerLikeAFailedConnect) {
    // Without retries, a server whose certificate does not verify costs at
    // most unhealthy_after (default 3) 502s, then is ejected (backoff 1 s,
    // doubling) like a server that refuses connections, instead of failing
    // every other request.
    TlsMock bad(pki_, "bad", pki_.wrong_server);
    TlsMock good(pki_, "good", pki_.server);
    ASSERT_TRUE(bad.ok() && good.ok());
    GatewayConfig cfg = basic_config({bad.address(), good.address()});
    cfg.upstream().retries = 0;
    cfg.workers = "1";
    ASSERT_TRUE(gw_.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw_.logs();
    int failed = 0;
    for (int i = 0; i < 8; ++i) {
        auto r = get(plain_completion());
        ASSERT_TRUE(r);
        if (r->status != 200) ++failed;
    }
    EXPECT_LE(failed, 3) << failed << " of 8 requests failed on the server with a bad certificate";
    EXPECT_GE(failed, 1) << "the server with a bad certificate was never tried";
}

TEST_F(TlsUpstream, HandshakeThatNeverCompletesTimesOut) {
    // A server that accepts TCP (the kernel backlog) and never answers the
    // ClientHello: the connect timeout covers the handshake, as for nginx.
    BusyPort silent;
    GatewayConfig cfg = basic_config({"127.0.0.1:" + std::to_string(silent.port())});
    cfg.upstream().connect_timeout = "1s";
    cfg.upstream().retries = 0;
    ASSERT_TRUE(gw_.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw_.logs();
    auto t0 = Clock::now();
    auto r = request_once(gw_.port(), plain_completion(), "", 15s);
    double ms = ms_between(t0, Clock::now());
    ASSERT_TRUE(r) << "no answer within 15 s";
    std::cout << "silent TLS upstream answered with " << r->status << " after " << ms << " ms\n";
    EXPECT_LT(ms, 3000.0);
    EXPECT_EQ(r->status, 504) << "a handshake timeout is a connect timeout (SPEC §4: 504): "
                              << r->body;
}

TEST_F(TlsUpstream, PlainServerBehindTlsConfigIs502) {
    auto plain = std::make_unique<MockServer>("plain");
    ASSERT_TRUE(plain->ok());
    GatewayConfig cfg = basic_config({plain->address()});
    cfg.upstream().retries = 0;
    ASSERT_TRUE(gw_.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw_.logs();
    expect_gateway_502(get(plain_completion()));
}

TEST_F(TlsUpstream, VerifyFalseAcceptsAnyCertificate) {
    TlsMock mock(pki_, "tu", pki_.wrong_server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + ", verify: false, server_name: nowhere.test}"))
        << gw_.logs();
    auto r = get(plain_completion());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body << gw_.logs();

    // And a `ca` that did not sign the server's certificate.
    TlsMock right(pki_, "tr", pki_.server);
    ASSERT_TRUE(right.ok());
    Gateway gw;
    GatewayConfig cfg = basic_config({right.address()});
    ASSERT_TRUE(
        gw.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.wrong_ca) + ", verify: false}")))
        << gw.logs();
    r = request_once(gw.port(), plain_completion());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body << gw.logs();
}

TEST_F(TlsUpstream, ClientCertificateIsPresented) {
    TlsMock mock(pki_, "tu", pki_.server, {"--tls-client-ca", pki_.ca}, true);
    ASSERT_TRUE(mock.ok());
    {
        ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + "}")) << gw_.logs();
        expect_gateway_502(get(plain_completion()));
        gw_.stop();
    }
    Gateway gw;
    GatewayConfig cfg = basic_config({mock.address()});
    ASSERT_TRUE(gw.start(
        with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + ", " + pair_yaml(pki_.client) + "}")))
        << gw.logs();
    auto r = request_once(gw.port(), http_request("POST", "/mock/echo", {}, "x"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body << gw.logs();
    auto j = r->json();
    ASSERT_TRUE(j && j->get("tls")) << r->body;
    EXPECT_EQ(j->get("tls")->get("client_subject")->str, "CN=dsgw test client");
}

TEST_F(TlsUpstream, PooledTlsConnectionsAreReused) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    GatewayConfig cfg = basic_config({mock.address()});
    cfg.workers = "1";  // one pool
    ASSERT_TRUE(gw_.start(with_upstream_tls(cfg.yaml(), "{ca: " + q(pki_.ca) + "}"))) << gw_.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(c.send_all(plain_completion()));
        auto r = c.read_response();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(mock.counter(*s, "connections_accepted"), 1) << s->get("id")->str;
    EXPECT_EQ(mock.counter(*s, "tls_handshakes"), 1);
    EXPECT_EQ(mock.counter(*s, "requests"), 5);
}

TEST_F(TlsUpstream, StreamFromTlsUpstreamArrivesEventByEventAndHangUpReachesIt) {
    TlsMock mock(pki_, "tu", pki_.server);
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(start(mock, "{ca: " + q(pki_.ca) + "}")) << gw_.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(10, 50)));
    auto s = c.read_stream(sent, 20s);
    ASSERT_TRUE(s.ok) << s.error;
    ASSERT_EQ(s.token_events().size(), 10u);
    std::set<std::size_t> reads;
    for (const auto* e : s.token_events()) reads.insert(e->recv_index);
    EXPECT_EQ(reads.size(), 10u) << "events were batched";

    // The client leaves: the TLS upstream connection is closed at once.
    Conn d;
    ASSERT_TRUE(d.connect(gw_.port()));
    ASSERT_TRUE(d.send_all(stream_request(100, 100)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(d.read_into(rd, 10s, 2)) << rd.result().error;
    auto closed_at = Clock::now();
    d.close();
    std::optional<Json> st;
    for (int i = 0; i < 100; ++i) {
        st = mock.stats();
        if (st && mock.counter(*st, "streams_cancelled") >= 1) break;
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(st);
    EXPECT_EQ(mock.counter(*st, "streams_cancelled"), 1);
    double ms = (static_cast<double>(st->get("last_peer_close_ns")->as_int()) -
                 static_cast<double>(steady_ns(closed_at))) /
                1e6;
    EXPECT_LT(ms, 100.0);
}

// ================================================================== TLS on both sides

std::string random_body(std::size_t n, std::uint64_t seed) {
    std::string body(n, '\0');
    std::uint64_t x = seed;
    for (auto& ch : body) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ch = static_cast<char>(x);
    }
    return body;
}

std::string chunked(const std::string& body, const std::string& head) {
    std::string wire = head + "Transfer-Encoding: chunked\r\n\r\n";
    std::size_t pos = 0, step = 1;
    while (pos < body.size()) {
        std::size_t n = std::min<std::size_t>(step, body.size() - pos);
        char hex[32];
        std::snprintf(hex, sizeof hex, "%zx\r\n", n);
        wire += hex;
        wire.append(body, pos, n);
        wire += "\r\n";
        pos += n;
        step = step * 3 % 70001 + 1;
    }
    return wire + "0\r\n\r\n";
}

TEST(TlsEndToEnd, LargeBodiesAndStreamsThroughTlsOnBothSides) {
    TestPki pki;
    ASSERT_TRUE(pki.ok()) << pki.error();
    TlsMock mock(pki, "e2e", pki.server, {"--response-bytes", std::to_string(3 << 20)});
    ASSERT_TRUE(mock.ok());
    GatewayConfig cfg = basic_config({mock.address()});
    std::string yaml = with_listener_tls(cfg.yaml(), pair_yaml(pki.server));
    yaml = with_upstream_tls(yaml, "{ca: " + q(pki.ca) + ", server_name: localhost}");
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml)) << gw.logs();

    TlsConn c;
    ASSERT_TRUE(c.connect(gw.port(), trusting(pki))) << c.error();
    // 4 MiB up, chunked and with Content-Length, hashed by the mock.
    const std::string body = random_body(4 << 20, 99);
    char want[17];
    std::snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(fnv1a64(body)));
    const std::string head = "POST /mock/echo HTTP/1.1\r\nHost: localhost\r\n";
    for (bool use_chunked : {true, false}) {
        std::string wire = use_chunked ? chunked(body, head)
                                       : head + "Content-Length: " + std::to_string(body.size()) +
                                             "\r\n\r\n" + body;
        ASSERT_TRUE(c.send_all(wire)) << c.error();
        std::string err;
        auto r = c.read_response(60s, false, &err);
        ASSERT_TRUE(r) << err;
        ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
        auto j = r->json();
        ASSERT_TRUE(j && j->get("body_fnv1a64") && j->get("tls")) << r->body.substr(0, 300);
        EXPECT_EQ(j->get("body_bytes")->as_uint(), body.size());
        EXPECT_EQ(j->get("body_fnv1a64")->str, want) << "request body altered on the way";
        EXPECT_EQ(j->get("tls")->get("sni")->str, "localhost");
    }
    // 3 MiB down.
    ASSERT_TRUE(c.send_all(plain_completion()));
    auto big = c.read_response(60s);
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 200);
    EXPECT_GE(big->body.size(), static_cast<std::size_t>(3 << 20) - 64);
    EXPECT_TRUE(big->json().has_value()) << "3 MiB response is not intact JSON";
    // And a stream, still event by event.
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(10, 40)));
    auto s = c.read_stream(sent, 20s);
    ASSERT_TRUE(s.ok) << s.error;
    ASSERT_EQ(s.token_events().size(), 10u);
    std::set<std::size_t> reads;
    for (const auto* e : s.token_events()) reads.insert(e->recv_index);
    EXPECT_EQ(reads.size(), 10u) << "events were batched";
}

}  // namespace
}  // namespace dsgw::it
