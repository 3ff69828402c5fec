// GET /v1/models on a listener with routes (SPEC §8): which names a client
// is offered, and the JSON bodies.

#include "deepseek_gateway/llm/models_list.hpp"

#include <gtest/gtest.h>

#include <map>

namespace dsgw::llm {
namespace {

using Names = std::vector<std::string>;

config::RouteConfig route(Names models, std::size_t upstream, std::string rewrite = "") {
    config::RouteConfig r;
    r.models = std::move(models);
    r.upstream_index = upstream;
    r.upstream = "u" + std::to_string(upstream);
    r.rewrite_model = std::move(rewrite);
    return r;
}

// The servers' lists by upstream index; absent: nothing fetched yet. Counts
// the questions asked.
struct Lists {
    std::map<std::size_t, Names> by_upstream;
    std::map<std::size_t, int> asked;
    std::function<ListedModels(std::size_t)> fn() {
        return [this](std::size_t i) -> ListedModels {
            ++asked[i];
            auto it = by_upstream.find(i);
            if (it == by_upstream.end()) return nullptr;
            return std::make_shared<const Names>(it->second);
        };
    }
};

TEST(ClientModels, ExactNamesOfTheRoutesInOrderWithoutDuplicates) {
    config::ListenerConfig lc;
    lc.routes = {route({"deepseek-chat", "deepseek-v3"}, 0), route({"deepseek-r1"}, 1),
                 route({"deepseek-v3", "deepseek-chat"}, 1)};
    Lists lists;
    EXPECT_EQ(client_models(lc, lists.fn()),
              (Names{"deepseek-chat", "deepseek-v3", "deepseek-r1"}));
}

TEST(ClientModels, AGlobOffersTheNamesItsUpstreamListsThatItMatches) {
    config::ListenerConfig lc;
    lc.routes = {route({"deepseek-r1*", "exact"}, 1)};
    Lists lists;
    lists.by_upstream[1] = {"deepseek-r1", "qwen", "deepseek-r1-distill", "Deepseek-r1-x"};
    EXPECT_EQ(client_models(lc, lists.fn()),
              (Names{"exact", "deepseek-r1", "deepseek-r1-distill"}));
    // ? and [...] too.
    lc.routes = {route({"m?", "[xy]-1"}, 1)};
    lists.by_upstream[1] = {"m1", "m22", "x-1", "z-1"};
    EXPECT_EQ(client_models(lc, lists.fn()), (Names{"m1", "x-1"}));
}

TEST(ClientModels, ARouteWithRewriteModelOffersOnlyItsExactNames) {
    config::ListenerConfig lc;
    lc.routes = {route({"r1", "deepseek-r1*"}, 1, "deepseek-ai/DeepSeek-R1")};
    Lists lists;
    lists.by_upstream[1] = {"deepseek-ai/DeepSeek-R1", "deepseek-r1-served"};
    EXPECT_EQ(client_models(lc, lists.fn()), Names{"r1"});
}

TEST(ClientModels, APathOnlyRouteOffersEverythingItsUpstreamLists) {
    config::ListenerConfig lc;
    auto embeddings = route({}, 2);
    embeddings.path = "/v1/embeddings";
    lc.routes = {route({"chat"}, 0), embeddings};
    Lists lists;
    lists.by_upstream[0] = {"not-offered"};  // only reached through "chat", an exact name
    lists.by_upstream[2] = {"bge-m3", "e5"};
    EXPECT_EQ(client_models(lc, lists.fn()), (Names{"chat", "bge-m3", "e5"}));
    // With rewrite_model: nothing of its upstream's.
    lc.routes[1].rewrite_model = "bge-m3";
    EXPECT_EQ(client_models(lc, lists.fn()), Names{"chat"});
}

TEST(ClientModels, TheDefaultUpstreamsNamesComeLast) {
    config::ListenerConfig lc;
    lc.upstream = "u3";
    lc.upstream_index = 3;
    lc.routes = {route({"r*"}, 1)};
    Lists lists;
    lists.by_upstream[1] = {"r2", "x"};
    lists.by_upstream[3] = {"d1", "r2", "d2"};
    EXPECT_EQ(client_models(lc, lists.fn()), (Names{"r2", "d1", "d2"}));
}

TEST(ClientModels, WithoutADefaultUpstreamItsListIsNotAsked) {
    config::ListenerConfig lc;  // upstream empty, upstream_index 0
    lc.routes = {route({"exact"}, 1, "other-name")};
    Lists lists;
    lists.by_upstream[0] = {"must-not-appear"};
    EXPECT_EQ(client_models(lc, lists.fn()), Names{"exact"});
    EXPECT_EQ(lists.asked.count(0), 0u);
}

TEST(ClientModels, AnUpstreamNotFetchedYetOffersNothing) {
    config::ListenerConfig lc;
    lc.upstream = "u0";
    lc.routes = {route({"a*"}, 1), route({"b"}, 2)};
    Lists lists;  // every list null
    EXPECT_EQ(client_models(lc, lists.fn()), Names{"b"});
}

TEST(ModelsBodies, OpenAIsListShape) {
    EXPECT_EQ(models_list_body({}), R"({"object":"list","data":[]})");
    EXPECT_EQ(models_list_body({"a", "deepseek-ai/DeepSeek-R1"}),
              R"({"object":"list","data":[)"
              R"({"id":"a","object":"model","created":0,"owned_by":"deepseek-gateway"},)"
              R"({"id":"deepseek-ai/DeepSeek-R1","object":"model","created":0,)"
              R"("owned_by":"deepseek-gateway"}]})");
}

TEST(ModelsBodies, OneModelAndItsIdEscaped) {
    EXPECT_EQ(model_body("x"),
              R"({"id":"x","object":"model","created":0,"owned_by":"deepseek-gateway"})");
    EXPECT_EQ(model_body("q\"b\\s\n\x01"),
              R"({"id":"q\"b\\s\n\u0001","object":"model","created":0,)"
              R"("owned_by":"deepseek-gateway"})");
    EXPECT_EQ(model_body("caf\xc3\xa9"),
              "{\"id\":\"caf\xc3\xa9\",\"object\":\"model\",\"created\":0,"
              "\"owned_by\":\"deepseek-gateway\"}");
}

}  // namespace
}  // namespace dsgw::llm
