// The servers' model lists (SPEC §8, upstream/models.hpp): which upstreams
// are asked, what is read from an answer, and the ModelLister against small
// scripted HTTP servers on loopback.

#include "deepseek_gateway/upstream/models.hpp"
#include "scripted_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace dsgw::upstream {
namespace {

using namespace std::chrono_literals;
using testing::LogCapture;
using testing::ScriptedServer;
using Names = std::vector<std::string>;

config::ServerConfig server_at(std::uint16_t port) {
    config::ServerConfig s;
    s.address = {"127.0.0.1", port};
    s.resolved = {boost::asio::ip::make_address("127.0.0.1")};
    return s;
}

config::UpstreamConfig upstream_of(const std::string& name, std::vector<std::uint16_t> ports) {
    config::UpstreamConfig u;
    u.name = name;
    for (auto p : ports) u.servers.push_back(server_at(p));
    u.health_check.timeout = 300ms;
    return u;
}

config::RouteConfig route_to(std::size_t upstream, std::vector<std::string> models) {
    config::RouteConfig r;
    r.models = std::move(models);
    r.upstream_index = upstream;
    return r;
}

// Upstream 0 behind a routed listener; the others only behind a listener
// without routes.
std::shared_ptr<const config::Config> config_with(std::vector<config::UpstreamConfig> ups) {
    auto cfg = std::make_shared<config::Config>();
    cfg->upstreams = std::move(ups);
    config::ListenerConfig routed;
    routed.name = "routed";
    routed.routes = {route_to(0, {"r*"})};
    cfg->listeners.push_back(routed);
    for (std::size_t i = 1; i < cfg->upstreams.size(); ++i) {
        config::ListenerConfig plain;
        plain.name = "plain" + std::to_string(i);
        plain.upstream = cfg->upstreams[i].name;
        plain.upstream_index = i;
        cfg->listeners.push_back(plain);
    }
    return cfg;
}

Names models_of(const Upstream& up) {
    auto m = up.models();
    return m ? *m : Names{"<null>"};
}

bool ready(std::future<void> f) {
    return f.wait_for(5s) == std::future_status::ready;
}

// ---- what is read from an answer -------------------------------------------

TEST(ModelList, ReadsTheIdsOfOpenAIsListShape) {
    std::string error;
    auto ids = parse_model_list(
        R"({"object":"list","data":[{"id":"deepseek-ai/DeepSeek-R1","object":"model","root":"x",)"
        R"("permission":[{"id":"modelperm-1"}]},{"object":"model"},{"id":5},{"id":""},7,)"
        R"({"id":"lora-a","parent":"deepseek-ai/DeepSeek-R1"}]})",
        error);
    ASSERT_TRUE(ids) << error;
    EXPECT_EQ(*ids, (Names{"deepseek-ai/DeepSeek-R1", "lora-a"}));
    ids = parse_model_list(R"({"data":[]})", error);
    ASSERT_TRUE(ids) << error;
    EXPECT_TRUE(ids->empty());
}

TEST(ModelList, AnAnswerThatIsNotAListIsRefusedWithAReason) {
    for (const char* body : {"", "not json", R"({"data":[)", R"([{"id":"a"}])",
                             R"({"object":"list"})", R"({"data":{"id":"a"}})"}) {
        std::string error;
        EXPECT_FALSE(parse_model_list(body, error)) << body;
        EXPECT_FALSE(error.empty()) << body;
    }
}

TEST(ModelList, OnlyUpstreamsOfListenersWithRoutesAreAsked) {
    config::Config cfg;
    cfg.upstreams.resize(5);
    config::ListenerConfig plain;  // no routes: its upstream 0 is not asked
    plain.upstream = "u0";
    plain.upstream_index = 0;
    config::ListenerConfig routed;  // routes to 1 and 3, default 2
    routed.upstream = "u2";
    routed.upstream_index = 2;
    routed.routes = {route_to(1, {"a"}), route_to(3, {})};
    config::ListenerConfig no_default;  // routes only
    no_default.routes = {route_to(1, {"b*"})};
    cfg.listeners = {plain, routed, no_default};
    EXPECT_EQ(upstreams_listing_models(cfg), (std::vector<bool>{false, true, true, true, false}));
}

// ---- the lister --------------------------------------------------------------

TEST(ModelLister, KeepsTheSortedUnionOfTheServersLists) {
    ScriptedServer a, b;
    a.answer_list({"r1", "deepseek-chat"});
    b.answer_list({"r2", "r1"});
    auto set = UpstreamSet::build(config_with({upstream_of("pool", {a.port(), b.port()})}), nullptr,
                                  false);
    const auto& up = *set->upstreams[0];
    EXPECT_FALSE(up.models());
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    EXPECT_EQ(models_of(up), (Names{"deepseek-chat", "r1", "r2"}));
    ASSERT_TRUE(up.servers()[0]->listed_models());
    EXPECT_EQ(*up.servers()[0]->listed_models(), (Names{"r1", "deepseek-chat"}));
    const auto req = a.last_request();
    EXPECT_EQ(req.rfind("GET /v1/models HTTP/1.1\r\n", 0), 0u) << req;
    EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(a.port()) + "\r\n"), std::string::npos)
        << req;
}

TEST(ModelLister, AsksNoServerOfAnUpstreamWithoutRoutes) {
    ScriptedServer routed, plain;
    routed.answer_list({"r1"});
    plain.answer_list({"p1"});
    auto set = UpstreamSet::build(
        config_with({upstream_of("routed", {routed.port()}), upstream_of("plain", {plain.port()})}),
        nullptr, false);
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    EXPECT_EQ(models_of(*set->upstreams[0]), Names{"r1"});
    EXPECT_FALSE(set->upstreams[1]->models());
    EXPECT_EQ(plain.requests(), 0);
}

TEST(ModelLister, AFailureOrAnAnswerThatIsNotAListKeepsThePreviousList) {
    ScriptedServer s;
    s.answer_list({"r1", "r2"});
    auto set = UpstreamSet::build(config_with({upstream_of("pool", {s.port()})}), nullptr, false);
    const auto& up = *set->upstreams[0];
    LogCapture log;
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    ASSERT_EQ(models_of(up), (Names{"r1", "r2"}));
    const auto before = up.models();

    auto still = [&](const char* what) {
        const int asked = s.requests();
        ASSERT_TRUE(ready(lister.refresh())) << what;
        EXPECT_GT(s.requests(), asked) << what;
        EXPECT_EQ(models_of(up), (Names{"r1", "r2"})) << what;
    };
    s.answer(500, R"({"error":"busy"})");
    still("500");
    s.answer(200, "<html>");
    still("not JSON");
    s.answer(200, R"({"data":5})");
    still("no data array");
    s.answer_raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"data\":[");
    still("cut short");
    s.answer_raw("");
    still("closed without a word");
    // One warning when it starts failing, then debug lines (refresh() starts
    // a new round, as a reload does: the state carries over).
    EXPECT_EQ(log.count("warning upstream pool server"), 1);
    EXPECT_EQ(log.count("GET /v1/models failed: status 500; its previous list of 2 model(s) stays"),
              1);
    EXPECT_EQ(log.count("debug upstream pool server"), 4);
    // The same list again: nothing changes, not even the pointer.
    s.answer_list({"r1", "r2"});
    ASSERT_TRUE(ready(lister.refresh()));
    EXPECT_EQ(models_of(up), (Names{"r1", "r2"}));
    EXPECT_EQ(up.models(), before);
    EXPECT_EQ(log.count("info upstream pool server 127.0.0.1:" + std::to_string(s.port()) +
                        ": GET /v1/models answers again"),
              1);
    EXPECT_EQ(log.count("lists 2 model(s): r1, r2"), 1);  // unchanged: not logged again
    // A new list replaces it.
    s.answer_list({"r3"});
    ASSERT_TRUE(ready(lister.refresh()));
    EXPECT_EQ(models_of(up), Names{"r3"});
}

TEST(ModelLister, AnEmptyListIsAListAndAnUnansweredServerHasNone) {
    ScriptedServer s;
    s.answer_list({});
    auto set = UpstreamSet::build(config_with({upstream_of("pool", {s.port()})}), nullptr, false);
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    EXPECT_EQ(models_of(*set->upstreams[0]), Names{});

    ScriptedServer down;
    down.answer(503, "{}");
    auto set2 =
        UpstreamSet::build(config_with({upstream_of("pool", {down.port()})}), nullptr, false);
    ASSERT_TRUE(ready(lister.apply(set2)));
    EXPECT_FALSE(set2->upstreams[0]->models());
}

TEST(ModelLister, ASilentOrClosedServerDoesNotHoldTheRoundBack) {
    ScriptedServer good, silent;
    good.answer_list({"r1"});
    silent.hang();
    // A port nobody listens on: bound, not listening.
    int closed = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(closed, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::getsockname(closed, reinterpret_cast<sockaddr*>(&a), &len), 0);
    auto set = UpstreamSet::build(
        config_with({upstream_of("pool", {silent.port(), ntohs(a.sin_port), good.port()})}),
        nullptr, false);
    ModelLister lister;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(ready(lister.apply(set)));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 250ms);  // the silent server's timeout (300 ms)
    EXPECT_LT(took, 2s);
    EXPECT_EQ(models_of(*set->upstreams[0]), Names{"r1"});
    ::close(closed);
}

TEST(ModelLister, ARebuiltSetStartsWithTheListsOfTheServersItKeeps) {
    ScriptedServer a, b;
    a.answer_list({"ra"});
    b.answer_list({"rb"});
    auto cfg1 = config_with({upstream_of("pool", {a.port(), b.port()})});
    auto set1 = UpstreamSet::build(cfg1, nullptr, false);
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set1)));
    ASSERT_EQ(models_of(*set1->upstreams[0]), (Names{"ra", "rb"}));
    // A reload drops b: the new upstream offers a's names before any fetch.
    auto set2 =
        UpstreamSet::build(config_with({upstream_of("pool", {a.port()})}), set1.get(), false);
    EXPECT_EQ(models_of(*set2->upstreams[0]), Names{"ra"});
    // A new upstream (another name) starts empty.
    auto set3 =
        UpstreamSet::build(config_with({upstream_of("other", {a.port()})}), set1.get(), false);
    EXPECT_FALSE(set3->upstreams[0]->models());
}

TEST(ModelLister, ListsAreFetchedAgainEveryHealthCheckInterval) {
    ScriptedServer s;
    s.answer_list({"r1"});
    auto u = upstream_of("pool", {s.port()});
    u.health_check.enabled = true;
    u.health_check.interval = 50ms;
    auto set = UpstreamSet::build(config_with({u}), nullptr, false);
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    ASSERT_EQ(models_of(*set->upstreams[0]), Names{"r1"});
    s.answer_list({"r2"});
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (models_of(*set->upstreams[0]) != Names{"r2"} &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(models_of(*set->upstreams[0]), Names{"r2"});
    EXPECT_GE(s.requests(), 2);
}

TEST(ModelLister, WithoutHealthChecksTheListWaitsThirtySeconds) {
    ScriptedServer s;
    s.answer_list({"r1"});
    auto set = UpstreamSet::build(config_with({upstream_of("pool", {s.port()})}), nullptr, false);
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(set)));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(s.requests(), 1);
    static_assert(ModelLister::kDefaultInterval == std::chrono::seconds(30));
}

TEST(ModelLister, AReloadStopsTheRoundsOfThePreviousSet) {
    ScriptedServer old_server, new_server;
    old_server.answer_list({"old"});
    new_server.answer_list({"new"});
    auto u1 = upstream_of("pool", {old_server.port()});
    u1.health_check.enabled = true;
    u1.health_check.interval = 30ms;
    auto u2 = upstream_of("pool", {new_server.port()});
    u2.health_check.enabled = true;
    u2.health_check.interval = 30ms;
    ModelLister lister;
    ASSERT_TRUE(ready(lister.apply(UpstreamSet::build(config_with({u1}), nullptr, false))));
    ASSERT_TRUE(ready(lister.apply(UpstreamSet::build(config_with({u2}), nullptr, false))));
    std::this_thread::sleep_for(100ms);  // the old loop's pause ends, it sees the new generation
    const int asked = old_server.requests();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(old_server.requests(), asked);
    EXPECT_GE(new_server.requests(), 3);
}

}  // namespace
}  // namespace dsgw::upstream
