// Routing by model end to end (SPEC §8): the real gateway with routes in
// front of mock servers that serve different models.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "harness.hpp"

namespace dsgw::it {
namespace {

// Three pools: r1 (by glob, the model rewritten), v3 (by a list of names),
// embed (by path); `tail` is appended to the listener (a default upstream,
// auth, more routes).
std::string routed_yaml(const MockServer& r1, const MockServer& v3, const MockServer& embed,
                        const std::string& listener_tail = "", const std::string& extra = "") {
    return "workers: 2\n"
           "admin:\n  address: 127.0.0.1:0\n"
           "listeners:\n"
           "  - name: main\n"
           "    address: 127.0.0.1:0\n"
           "    access: {allow: [127.0.0.0/8]}\n"
           "    routes:\n"
           "      - name: r1\n"
           "        match: {model: \"deepseek-r1*\"}\n"
           "        upstream: r1-pool\n"
           "        rewrite_model: deepseek-ai/DeepSeek-R1\n"
           "      - name: v3\n"
           "        match: {model: [deepseek-v3, deepseek-chat]}\n"
           "        upstream: v3-pool\n"
           "      - name: embeddings\n"
           "        match: {path: /v1/embeddings}\n"
           "        upstream: embed-pool\n" +
           listener_tail +
           "upstreams:\n"
           "  - name: r1-pool\n"
           "    servers: [{address: \"" +
           r1.address() +
           "\"}]\n"
           "  - name: v3-pool\n"
           "    servers: [{address: \"" +
           v3.address() +
           "\"}]\n"
           "  - name: embed-pool\n"
           "    servers: [{address: \"" +
           embed.address() + "\"}]\n" + extra +
           "logging:\n  level: info\n  access_log: stdout\n  format: text\n";
}

std::string json_post(const std::string& path, const std::string& body,
                      std::vector<std::pair<std::string, std::string>> extra = {}) {
    extra.insert(extra.begin(), {"Content-Type", "application/json"});
    return http_request("POST", path, extra, body);
}

std::string chat(const std::string& model) {
    return json_post("/v1/chat/completions",
                     R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}]})");
}

std::string served_by(const std::optional<Response>& r) {
    return r ? r->header("X-Mock-Server").value_or("") : "no response";
}

const std::string kNotFound =
    R"({"error":{"message":"The model 'NAME' does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}})";

std::string not_found_body(const std::string& name) {
    auto b = kNotFound;
    b.replace(b.find("NAME"), 4, name);
    return b;
}

class Routing : public ::testing::Test {
protected:
    void SetUp() override {
        r1_ = std::make_unique<MockServer>(
            "r1", std::vector<std::string>{"--models", "deepseek-ai/DeepSeek-R1"});
        v3_ = std::make_unique<MockServer>(
            "v3", std::vector<std::string>{"--models", "deepseek-v3,deepseek-chat"});
        embed_ =
            std::make_unique<MockServer>("embed", std::vector<std::string>{"--models", "bge-m3"});
        def_ = std::make_unique<MockServer>("default",
                                            std::vector<std::string>{"--models", "qwen-7b"});
        ASSERT_TRUE(r1_->ok() && v3_->ok() && embed_->ok() && def_->ok());
    }
    std::string with_default(const std::string& listener_tail = "") const {
        return routed_yaml(
            *r1_, *v3_, *embed_, "    upstream: fallback\n" + listener_tail,
            "  - name: fallback\n    servers: [{address: \"" + def_->address() + "\"}]\n");
    }
    // Requests each of r1, v3 and embed has served (the gateway's model-list
    // fetches included: compare two readings).
    std::array<std::int64_t, 3> requests_seen() {
        std::array<std::int64_t, 3> n{};
        int i = 0;
        for (auto* m : {r1_.get(), v3_.get(), embed_.get()}) {
            auto s = m->stats();
            n[i++] = s ? s->requests : -1000;
        }
        return n;
    }
    std::unique_ptr<MockServer> r1_, v3_, embed_, def_;
};

std::array<std::int64_t, 3> operator-(std::array<std::int64_t, 3> a,
                                      const std::array<std::int64_t, 3>& b) {
    for (int i = 0; i < 3; ++i) a[i] -= b[i];
    return a;
}

TEST_F(Routing, EachModelGoesToItsPoolAndOthersToTheDefault) {
    Gateway gw;
    ASSERT_TRUE(gw.start(with_default())) << gw.logs();
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-r1"))), "r1");
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-r1-distill-qwen-7b"))), "r1");
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-v3"))), "v3");
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-chat"))), "v3");
    EXPECT_EQ(served_by(request_once(gw.port(), chat("qwen-7b"))), "default");
    // By path, whatever the model.
    EXPECT_EQ(served_by(request_once(
                  gw.port(), json_post("/v1/embeddings", R"({"model":"bge-m3","input":"x"})"))),
              "embed");
    // Not JSON: only routes without a model, else the default.
    EXPECT_EQ(served_by(request_once(gw.port(), http_request("GET", "/health"))), "default");
}

TEST_F(Routing, TheModelIsFoundWhereverItIsAndOnlyAtTopLevel) {
    Gateway gw;
    ASSERT_TRUE(gw.start(with_default())) << gw.logs();
    // Last, after a nested "model", escaped, with whitespace, given twice.
    const std::string last =
        R"({"messages":[{"role":"user","content":"{\"model\":\"deepseek-v3\"}","model":"deepseek-v3"}],)"
        R"( "meta" : {"model":"deepseek-v3"} ,  "model" :  "deepseek-r1" })";
    EXPECT_EQ(served_by(request_once(gw.port(), json_post("/v1/chat/completions", last))), "r1");
    EXPECT_EQ(served_by(request_once(gw.port(), json_post("/v1/chat/completions",
                                                          R"({"mod\u0065l":"deepseek\u002dv3"})"))),
              "v3");
    EXPECT_EQ(served_by(request_once(
                  gw.port(), json_post("/v1/chat/completions",
                                       R"({"model":"deepseek-v3","model":"deepseek-r1"})"))),
              "r1")
        << "the last duplicate wins, as Python's json reads it";
    // Content-Type with parameters, any case.
    EXPECT_EQ(served_by(request_once(
                  gw.port(), http_request("POST", "/v1/chat/completions",
                                          {{"Content-Type", "Application/JSON; charset=utf-8"}},
                                          R"({"model":"deepseek-v3"})"))),
              "v3");
}

TEST_F(Routing, UnknownModelWithoutDefaultIsOpenAIsExact404) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    const auto before = requests_seen();
    // Twice on one connection: the answer keeps it open and in step.
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(chat("gpt-4o") + chat("deepseek-v3")));
    auto first = c.read_response();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 404);
    EXPECT_EQ(first->body, not_found_body("gpt-4o"));
    EXPECT_EQ(first->header("Content-Type").value_or(""), "application/json");
    auto second = c.read_response();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 200) << second->body;
    EXPECT_EQ(second->header("X-Mock-Server").value_or(""), "v3");
    // A model that needs escaping in the message.
    auto odd = request_once(gw.port(), json_post("/v1/chat/completions", R"({"model":"a\"b"})"));
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->body, not_found_body(R"(a\"b)"));
    // No model and nothing to take it: the URL is unknown.
    auto none = request_once(gw.port(), http_request("GET", "/v1/files"));
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 404);
    EXPECT_EQ(
        none->body,
        R"j({"error":{"message":"Invalid URL (GET /v1/files)","type":"invalid_request_error","param":null,"code":null}})j");
    EXPECT_EQ(requests_seen() - before, (std::array<std::int64_t, 3>{0, 1, 0}));
}

TEST_F(Routing, InvalidJsonAndMissingModelAre400) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    const auto before = requests_seen();
    auto bad =
        request_once(gw.port(), json_post("/v1/chat/completions", R"({"model":"deepseek-v3",})"));
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    auto j = bad->json();
    ASSERT_TRUE(j) << bad->body;
    EXPECT_EQ(j->get("error")->get("type")->str, "invalid_request_error") << bad->body;
    EXPECT_EQ(j->get("error")->get("code")->type, Json::Type::null) << bad->body;
    auto missing = request_once(gw.port(), json_post("/v1/chat/completions", R"({"messages":[]})"));
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 400);
    EXPECT_EQ(
        missing->body,
        R"({"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":null,"code":null}})");
    auto number = request_once(gw.port(), json_post("/v1/chat/completions", R"({"model":3})"));
    ASSERT_TRUE(number);
    EXPECT_EQ(number->status, 400);
    EXPECT_NE(number->body.find(R"("code":"invalid_type")"), std::string::npos) << number->body;
    auto empty = request_once(gw.port(), json_post("/v1/chat/completions", ""));
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 400);
    // Broken early in a long body: refused without waiting for the rest.
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(
        c.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{]"));
    auto early = c.read_response(5s);
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 400);
    EXPECT_EQ(early->header("Connection").value_or(""), "close");
    EXPECT_EQ(requests_seen() - before, (std::array<std::int64_t, 3>{0, 0, 0}));
}

// A path prefix cannot be met by walking out of it: dot segments (also
// percent-encoded) are refused on a listener with routes.
TEST_F(Routing, DotSegmentsAreRefused) {
    Gateway gw;
    ASSERT_TRUE(gw.start(with_default())) << gw.logs();
    const auto before = requests_seen();
    for (const char* path : {"/v1/embeddings/../chat/completions", "/v1/embeddings/%2e%2E/chat",
                             "/v1/./embeddings", "/v1/embeddings/..", "/v1/embeddings/.%2e?x=1"}) {
        auto r = request_once(gw.port(), json_post(path, R"({"model":"deepseek-v3","input":"x"})"));
        ASSERT_TRUE(r) << path;
        EXPECT_EQ(r->status, 400) << path;
        EXPECT_NE(r->body.find("invalid_request_error"), std::string::npos) << r->body;
    }
    // Dots inside a segment are names, not steps.
    EXPECT_EQ(served_by(request_once(gw.port(), json_post("/v1/embeddings/a..b",
                                                          R"({"model":"bge-m3","input":"x"})"))),
              "embed");
    EXPECT_EQ(served_by(request_once(
                  gw.port(), json_post("/v1/chat/completions.v2", R"({"model":"deepseek-v3"})"))),
              "v3");
    EXPECT_EQ(requests_seen() - before, (std::array<std::int64_t, 3>{0, 1, 1}));
}

// The body the server receives: only the model's value changed, and the
// Content-Length with it, whatever the client's framing.
TEST_F(Routing, RewriteChangesOnlyTheModelValue) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    const std::string before =
        R"({ "messages" : [{"role":"user","content":"\u00e9t\u00e9"}], "model" : "deepseek-r1", "n": 1 })";
    std::string after = before;
    after.replace(after.find(R"("deepseek-r1")"), 13, R"("deepseek-ai/DeepSeek-R1")");
    auto r = request_once(gw.port(), json_post("/mock/echo", before));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = r->json();
    ASSERT_TRUE(j);
    EXPECT_EQ(j->get("body_bytes")->as_uint(), after.size());
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(after)));
    EXPECT_EQ(j->get("body_fnv1a64")->str, hex);

    // Chunked, in pieces that split the model: sent with a Content-Length.
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(
        c.send_all("POST /mock/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"));
    std::size_t at = 0;
    for (std::size_t piece : {7, 30, 9, 2, 1000}) {
        const auto part = before.substr(at, piece);
        at += part.size();
        char line[16];
        std::snprintf(line, sizeof line, "%zx\r\n", part.size());
        if (part.empty()) break;
        ASSERT_TRUE(c.send_all(std::string(line) + part + "\r\n"));
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(c.send_all("0\r\n\r\n"));
    auto chunked = c.read_response();
    ASSERT_TRUE(chunked);
    ASSERT_EQ(chunked->status, 200) << chunked->body;
    auto cj = chunked->json();
    ASSERT_TRUE(cj);
    EXPECT_EQ(cj->get("body_bytes")->as_uint(), after.size());
    EXPECT_EQ(cj->get("body_fnv1a64")->str, hex);
    bool length = false, te = false;
    for (const auto& h : cj->get("headers")->arr) {
        if (to_lower(h.arr[0].str) == "content-length")
            length = h.arr[1].str == std::to_string(after.size());
        if (to_lower(h.arr[0].str) == "transfer-encoding") te = true;
    }
    EXPECT_TRUE(length) << chunked->body;
    EXPECT_FALSE(te) << chunked->body;
}

TEST_F(Routing, ExpectContinueAndABodyInManyPieces) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    std::string body = R"({"messages":[{"role":"user","content":")" + std::string(300000, 'x') +
                       R"("}],"model":"deepseek-v3"})";
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(
        c.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                   "Content-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    std::string got;
    while (got.find("\r\n\r\n") == std::string::npos)
        ASSERT_GT(c.recv_some(got, 5s), 0) << "no 100 Continue";
    EXPECT_EQ(got.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << got;
    for (std::size_t at = 0; at < body.size(); at += 65536)
        ASSERT_TRUE(c.send_all(body.substr(at, 65536)));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "v3");
}

TEST_F(Routing, ABodyOverTheLimitIs413) {
    Gateway gw;
    auto yaml = routed_yaml(*r1_, *v3_, *embed_, "", "limits:\n  max_request_body: 1KiB\n");
    ASSERT_TRUE(gw.start(yaml)) << gw.logs();
    std::string body = R"({"model":"deepseek-v3","x":")" + std::string(2000, 'x') + R"("})";
    auto r = request_once(gw.port(), json_post("/v1/chat/completions", body));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
}

TEST_F(Routing, ARouteLimitedToOneKeyIsUnknownToOthers) {
    TempDir dir;
    std::string keys;
    for (const auto& [name, secret] : {std::pair{"team-a", "sk-a"}, std::pair{"team-b", "sk-b"}}) {
        const auto in = dir.write(std::string(name) + ".txt", std::string(secret) + "\n");
        auto hashed = run_command("/bin/sh", {"-c", gateway_bin() + " hash-key < " + in});
        ASSERT_EQ(hashed.exit_code, 0) << hashed.err_text();
        for (auto l : hashed.out) {
            if (auto p = l.find("CHANGE-ME"); p != std::string::npos) l.replace(p, 9, name);
            keys += l + "\n";
        }
    }
    const auto file = dir.write("keys.yaml", keys);
    auto yaml = routed_yaml(*r1_, *v3_, *embed_, "    auth: {api_keys_file: " + file + "}\n");
    // r1 for team-a only.
    yaml.replace(yaml.find("        rewrite_model:"), 0, "        api_keys: [team-a]\n");
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml)) << gw.logs();
    auto as = [&](const char* key, const std::string& model) {
        auto raw = json_post("/v1/chat/completions", R"({"model":")" + model + R"("})",
                             {{"Authorization", std::string("Bearer ") + key}});
        return request_once(gw.port(), raw);
    };
    auto a = as("sk-a", "deepseek-r1");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200) << a->body;
    auto b = as("sk-b", "deepseek-r1");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 404);
    EXPECT_EQ(b->body, not_found_body("deepseek-r1"));
    auto b3 = as("sk-b", "deepseek-v3");
    ASSERT_TRUE(b3);
    EXPECT_EQ(b3->status, 200) << b3->body;
}

TEST_F(Routing, ModelsAreListedFromRoutesAndServers) {
    Gateway gw;
    ASSERT_TRUE(gw.start(with_default())) << gw.logs();
    // The servers' lists arrive after start: wait for them.
    std::optional<Response> r;
    for (int i = 0; i < 100; ++i) {
        r = request_once(gw.port(), http_request("GET", "/v1/models"));
        if (r && r->body.find("qwen-7b") != std::string::npos) break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto j = r->json();
    ASSERT_TRUE(j) << r->body;
    EXPECT_EQ(j->get("object")->str, "list");
    std::vector<std::string> ids;
    for (const auto& m : j->get("data")->arr) {
        ids.push_back(m.get("id")->str);
        EXPECT_EQ(m.get("object")->str, "model");
    }
    std::sort(ids.begin(), ids.end());
    // deepseek-v3 and deepseek-chat: named by the route and listed by its
    // server, once each; the R1 server's own name is not for clients (the
    // route rewrites to it); bge-m3 from the path route's server.
    EXPECT_EQ(ids, (std::vector<std::string>{"bge-m3", "deepseek-chat", "deepseek-v3", "qwen-7b"}))
        << r->body;
    auto one = request_once(gw.port(), http_request("GET", "/v1/models/deepseek-v3"));
    ASSERT_TRUE(one);
    EXPECT_EQ(one->status, 200);
    EXPECT_EQ(one->json()->get("id")->str, "deepseek-v3");
    // Percent-encoded, as an SDK may send an id holding "/".
    auto encoded = request_once(gw.port(), http_request("GET", "/v1/models/deepseek%2Dv3"));
    ASSERT_TRUE(encoded);
    EXPECT_EQ(encoded->status, 200) << encoded->body;
    EXPECT_EQ(encoded->json()->get("id")->str, "deepseek-v3");
    auto gone = request_once(gw.port(), http_request("GET", "/v1/models/gpt-4o"));
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->status, 404);
    EXPECT_EQ(gone->body, not_found_body("gpt-4o"));
}

TEST_F(Routing, MetricsAndTheAccessLogNameTheRouteAndModel) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    ASSERT_TRUE(request_once(gw.port(), chat("deepseek-v3")));
    ASSERT_TRUE(
        request_once(gw.port(), json_post("/v1/chat/completions", R"({"model":"deepseek-r1"})")));
    ASSERT_TRUE(request_once(gw.port(), chat("nope")));
    auto v3 = gw.process().wait_for_line(std::regex(R"(^\{.*"model":"deepseek-v3".*\}$)"), 5s);
    ASSERT_TRUE(v3) << gw.logs();
    EXPECT_NE((*v3)[0].find(R"("route":"v3")"), std::string::npos) << (*v3)[0];
    EXPECT_NE((*v3)[0].find(R"("upstream":"v3-pool")"), std::string::npos) << (*v3)[0];
    auto r1 = gw.process().wait_for_line(std::regex(R"(^\{.*"model":"deepseek-r1".*\}$)"), 5s);
    ASSERT_TRUE(r1) << gw.logs();
    EXPECT_NE((*r1)[0].find(R"("route":"r1")"), std::string::npos) << (*r1)[0];
    auto none = gw.process().wait_for_line(std::regex(R"(^\{.*"model":"nope".*\}$)"), 5s);
    ASSERT_TRUE(none) << gw.logs();
    EXPECT_NE((*none)[0].find(R"("route":"none")"), std::string::npos) << (*none)[0];
    EXPECT_NE((*none)[0].find(R"("status":404)"), std::string::npos) << (*none)[0];

    ASSERT_TRUE(request_once(gw.port(), chat(std::string(200, 'm'))));
    auto cut = gw.process().wait_for_line(std::regex(R"re(^\{.*"model":"(m+)".*\}$)re"), 5s);
    ASSERT_TRUE(cut) << gw.logs();
    EXPECT_EQ((*cut)[1].size(), 128u);

    static const std::regex admin_re(R"(admin listening on 127\.0\.0\.1:(\d+))");
    auto m = gw.process().wait_for_line(admin_re, 10s);
    ASSERT_TRUE(m);
    const auto admin = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    auto s = request_once(admin, http_request("GET", "/metrics"));
    ASSERT_TRUE(s);
    const auto& t = s->body;
    EXPECT_NE(
        t.find(
            R"(deepseek_gateway_requests_total{code="200",listener="main",route="v3",upstream="v3-pool"} 1)"),
        std::string::npos)
        << t;
    EXPECT_NE(
        t.find(
            R"(deepseek_gateway_requests_total{code="200",listener="main",route="r1",upstream="r1-pool"} 1)"),
        std::string::npos)
        << t;
    EXPECT_NE(
        t.find(
            R"(deepseek_gateway_requests_total{code="404",listener="main",route="none",upstream=""} 2)"),
        std::string::npos)
        << t;
}

TEST_F(Routing, RoutesChangeOnReload) {
    Gateway gw;
    ASSERT_TRUE(gw.start(routed_yaml(*r1_, *v3_, *embed_))) << gw.logs();
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-chat"))), "v3");
    auto yaml = routed_yaml(*r1_, *v3_, *embed_);
    yaml.replace(yaml.find("[deepseek-v3, deepseek-chat]"), 28, "[deepseek-v3]");
    { std::ofstream(gw.config_path()) << yaml; }
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("configuration reloaded"), 10s)) << gw.logs();
    auto r = request_once(gw.port(), chat("deepseek-chat"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << r->body;
    EXPECT_EQ(served_by(request_once(gw.port(), chat("deepseek-v3"))), "v3");
}

}  // namespace
}  // namespace dsgw::it
