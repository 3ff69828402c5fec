// Upstream health and admission (issue 7): per-server max_in_flight caps
// exact across workers, the bounded FIFO queue, passive ejection of a hung
// server, active health checks ejecting and re-admitting a server.

#include "harness.hpp"

#include <gtest/gtest.h>

#include <map>
#include <thread>

namespace dsgw::it {
namespace {

std::string yaml_for(const std::vector<std::string>& servers, const std::string& extra,
                     const std::string& timeouts = "{connect: 2s, first_byte: 30s, idle: 30s}") {
    std::string y = "workers: 2\nadmin: {address: 127.0.0.1:0}\nlisteners:\n  - name: main\n    address: 127.0.0.1:0\n"
                    "    access: {allow: [127.0.0.0/8]}\n    upstream: pool\n"
                    "upstreams:\n  - name: pool\n    balancer: least_conn\n    servers:\n";
    for (const auto& s : servers) y += "      - address: " + s + "\n";
    y += "    timeouts: " + timeouts + "\n";
    y += extra;
    y += "logging: {format: text, access_log: stdout, level: info}\n";
    return y;
}

struct Open {
    Conn conn;
    std::unique_ptr<StreamReader> reader;
    Clock::time_point sent;
};

TEST(Admission, CapIsExactAndQueuedRequestsRunInArrivalOrder) {
    auto mocks = start_mocks(2);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({mocks[0]->address(), mocks[1]->address()},
                                  "    max_in_flight: 2\n    queue: {size: 20, timeout: 20s}\n")))
        << gw.logs();

    // Ten streams of 10 tokens x 100 ms (~1 s each), sent 30 ms apart.
    std::vector<Open> open(10);
    for (int i = 0; i < 10; ++i) {
        open[i].reader = std::make_unique<StreamReader>(Clock::now());
        ASSERT_TRUE(open[i].conn.connect(gw.port()));
        open[i].sent = Clock::now();
        ASSERT_TRUE(open[i].conn.send_all(stream_request(10, 100)));
        std::this_thread::sleep_for(30ms);
    }
    // While the first four run, the other six wait.
    std::this_thread::sleep_for(200ms);
    int running = 0;
    for (auto& m : mocks) {
        auto s = m->stats();
        ASSERT_TRUE(s);
        running += static_cast<int>(s->in_flight);
    }
    EXPECT_EQ(running, 4);

    std::vector<Clock::time_point> first_event(10);
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(open[i].conn.read_into(*open[i].reader, 30s)) << open[i].reader->result().error;
        auto& r = open[i].reader->result();
        ASSERT_EQ(r.response.status, 200) << i;
        ASSERT_TRUE(r.saw_done()) << i;
        ASSERT_FALSE(r.events.empty());
        first_event[i] = r.events.front().at;
    }
    for (auto& m : mocks) {
        auto s = m->stats();
        ASSERT_TRUE(s);
        EXPECT_LE(s->max_in_flight, 2) << m->id() << " " << s->raw;
    }
    // Queued requests were served in the order they arrived: the first event
    // of request i+1 never comes before that of request i among the queued.
    for (int i = 5; i < 10; ++i)
        EXPECT_LE(first_event[i - 1], first_event[i] + 5ms) << "request " << i << " overtook";
}

TEST(Admission, FullQueueAndQueueTimeoutAnswer503WithRetryAfter) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({mocks[0]->address()},
                                  "    max_in_flight: 1\n    queue: {size: 1, timeout: 500ms}\n")))
        << gw.logs();
    // One runs (long), one waits; a third finds the queue full.
    Open running, waiting;
    running.reader = std::make_unique<StreamReader>(Clock::now());
    ASSERT_TRUE(running.conn.connect(gw.port()));
    ASSERT_TRUE(running.conn.send_all(stream_request(30, 100)));
    ASSERT_TRUE(running.conn.read_into(*running.reader, 10s, 1));
    ASSERT_TRUE(waiting.conn.connect(gw.port()));
    ASSERT_TRUE(waiting.conn.send_all(stream_request(2, 10)));
    std::this_thread::sleep_for(100ms);

    auto full = request_once(gw.port(), stream_request(2, 10));
    ASSERT_TRUE(full);
    EXPECT_EQ(full->status, 503);
    EXPECT_EQ(full->header("Retry-After").value_or(""), "1");
    auto fj = full->json();
    ASSERT_TRUE(fj);
    EXPECT_EQ(fj->get("error")->get("code")->as_int(), 503);

    // The waiting one times out after 500 ms.
    auto timed_out = waiting.conn.read_response(5s);
    ASSERT_TRUE(timed_out);
    EXPECT_EQ(timed_out->status, 503);
    EXPECT_EQ(timed_out->header("Retry-After").value_or(""), "1");
    EXPECT_NE(timed_out->body.find("in time"), std::string::npos) << timed_out->body;
}

TEST(Admission, ClientLeavingTheQueueFreesItsPlace) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({mocks[0]->address()},
                                  "    max_in_flight: 1\n    queue: {size: 1, timeout: 20s}\n")))
        << gw.logs();
    Open running;
    running.reader = std::make_unique<StreamReader>(Clock::now());
    ASSERT_TRUE(running.conn.connect(gw.port()));
    ASSERT_TRUE(running.conn.send_all(stream_request(30, 100)));
    ASSERT_TRUE(running.conn.read_into(*running.reader, 10s, 1));
    {
        Conn leaver;
        ASSERT_TRUE(leaver.connect(gw.port()));
        ASSERT_TRUE(leaver.send_all(stream_request(2, 10)));
        std::this_thread::sleep_for(150ms);
    }  // hangs up while queued
    std::this_thread::sleep_for(150ms);
    // Its place is free: this one is queued (not refused) and served once the
    // running stream ends.
    Open next;
    next.reader = std::make_unique<StreamReader>(Clock::now());
    ASSERT_TRUE(next.conn.connect(gw.port()));
    ASSERT_TRUE(next.conn.send_all(stream_request(2, 10)));
    ASSERT_TRUE(next.conn.read_into(*next.reader, 15s)) << next.reader->result().error;
    EXPECT_EQ(next.reader->result().response.status, 200);
    auto s = mocks[0]->stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 2) << "the request that left the queue must never reach the server";
}

TEST(Health, HungServerIsEjectedByFirstByteTimeoutsAndDoesNotSlowOthers) {
    MockServer good("good");
    MockServer hung("hung", {"--hang"});
    ASSERT_TRUE(good.ok());
    ASSERT_TRUE(hung.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({good.address(), hung.address()},
                                  "    retries: 0\n    health_check: {path: /health, interval: 60s, "
                                  "timeout: 1s, unhealthy_after: 2}\n",
                                  "{connect: 1s, first_byte: 300ms, idle: 5s}")))
        << gw.logs();
    int timeouts = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
        ASSERT_TRUE(r);
        if (r->status == 504) ++timeouts;
        else EXPECT_EQ(r->status, 200);
    }
    // Two first-byte timeouts eject it; afterwards every request is served.
    EXPECT_LE(timeouts, 3) << gw.logs();
    EXPECT_GE(timeouts, 1);
    auto t0 = Clock::now();
    for (int i = 0; i < 10; ++i) {
        auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
    EXPECT_LT(ms_between(t0, Clock::now()), 1000.0) << "requests waited on the hung server";
    EXPECT_NE(gw.process().text(Process::Stream::any).find("ejected"), std::string::npos);
}

TEST(Health, KilledServerIsEjectedByChecksAndReadmittedWhenBack) {
    auto a = std::make_unique<MockServer>("a");
    auto b = std::make_unique<MockServer>("b");
    ASSERT_TRUE(a->ok());
    ASSERT_TRUE(b->ok());
    const std::string b_addr = b->address();
    const auto b_port = b->port();
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({a->address(), b_addr},
                                  "    health_check: {path: /health, interval: 200ms, timeout: "
                                  "150ms, healthy_after: 2, unhealthy_after: 2}\n")))
        << gw.logs();
    b.reset();  // killed
    auto unhealthy = gw.process().wait_for_line(std::regex("server " + b_addr + ": unhealthy"), 10s);
    ASSERT_TRUE(unhealthy) << gw.logs();
    a->reset();
    for (int i = 0; i < 20; ++i) {
        auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "a");
    }
    // Restarted on the same port (the last --listen wins), it is re-admitted
    // after two good probes and takes requests again.
    MockServer back("b", {"--listen", b_addr});
    ASSERT_EQ(back.port(), b_port) << "could not restart on the same port";
    auto healthy = gw.process().wait_for_line(std::regex("server " + b_addr + ": healthy again"), 10s);
    ASSERT_TRUE(healthy) << gw.logs();
    std::map<std::string, int> seen;
    for (int i = 0; i < 20; ++i) {
        auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        ++seen[r->header("X-Mock-Server").value_or("?")];
    }
    EXPECT_GT(seen["b"], 0);
    EXPECT_GT(seen["a"], 0);
}

TEST(Retries, DeadServerWithoutHealthChecksCostsNoRequestAndNoneRunsTwice) {
    auto mocks = start_mocks(2);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    ClosedPort dead;  // bound, not listening: connects are refused
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for({mocks[0]->address(), dead.address(), mocks[1]->address()},
                                  "    retries: 1\n")))
        << gw.logs();
    for (int i = 0; i < 300; ++i) {
        const std::string id = "req-" + std::to_string(i);
        auto r = request_once(gw.port(), http_request("POST", "/v1/chat/completions",
                                                      {{"X-Request-Id", id}}, chat_body(false)));
        ASSERT_TRUE(r) << id;
        ASSERT_EQ(r->status, 200) << id << " " << r->body << gw.logs();
    }
    // Every request reached exactly one live server, once.
    std::map<std::string, int> seen;
    for (auto& m : mocks) {
        auto s = m->stats();
        ASSERT_TRUE(s);
        for (const auto& id : s->request_ids) ++seen[id];
    }
    EXPECT_EQ(seen.size(), 300u);
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id << " was sent " << n << " times";
}

}  // namespace
}  // namespace dsgw::it
