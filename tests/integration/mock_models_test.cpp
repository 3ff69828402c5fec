// The mock inference server's models (tools/mock_server/README.md):
// --models lists them at GET /v1/models and answers a completion naming
// another with vLLM's 404; /mock/stats shows the model a request named (the
// routing tests read it to see what the gateway sent upstream).

#include "harness.hpp"

#include <gtest/gtest.h>

namespace dsgw::it {
namespace {

std::string completion(const std::string& body) {
    return http_request("POST", "/v1/chat/completions", {{"Content-Type", "application/json"}},
                        body);
}

std::vector<std::string> listed_ids(const Response& r) {
    std::vector<std::string> ids;
    auto j = r.json();
    if (!j) return ids;
    if (const Json* data = j->get("data"))
        for (const auto& m : data->arr)
            if (const Json* id = m.get("id")) ids.push_back(id->str);
    return ids;
}

std::string model_of(const Response& r) {
    auto j = r.json();
    const Json* m = j ? j->get("model") : nullptr;
    return m ? m->str : "<none>";
}

TEST(MockModels, WithoutTheFlagListsDeepseekMockAndAcceptsAnyModel) {
    MockServer mock("plain");
    ASSERT_TRUE(mock.ok());
    auto list = request_once(mock.port(), http_request("GET", "/v1/models"));
    ASSERT_TRUE(list);
    EXPECT_EQ(list->status, 200);
    EXPECT_EQ(listed_ids(*list), std::vector<std::string>{"deepseek-mock"});
    auto j = list->json();
    ASSERT_TRUE(j);
    EXPECT_EQ(j->get("object")->str, "list");

    auto r = request_once(mock.port(), completion(R"({"model":"anything-at-all"})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(model_of(*r), "anything-at-all");
}

TEST(MockModels, ListsTheGivenModelsInOrderInOpenAIsShape) {
    MockServer mock("two", {"--models", "deepseek-ai/DeepSeek-R1,deepseek-chat"});
    ASSERT_TRUE(mock.ok());
    auto list = request_once(mock.port(), http_request("GET", "/v1/models"));
    ASSERT_TRUE(list);
    EXPECT_EQ(list->status, 200);
    EXPECT_EQ(listed_ids(*list),
              (std::vector<std::string>{"deepseek-ai/DeepSeek-R1", "deepseek-chat"}));
    auto j = list->json();
    ASSERT_TRUE(j);
    for (const auto& m : j->get("data")->arr) {
        EXPECT_EQ(m.get("object")->str, "model");
        ASSERT_TRUE(m.get("created"));
        EXPECT_EQ(m.get("created")->type, Json::Type::number);
        EXPECT_EQ(m.get("owned_by")->str, "deepseek-mock");
    }
}

TEST(MockModels, AModelItDoesNotServeGetsVllmsNotFound) {
    MockServer mock("r1", {"--models", "deepseek-ai/DeepSeek-R1"});
    ASSERT_TRUE(mock.ok());
    for (bool stream : {false, true}) {
        auto r = request_once(mock.port(),
                              completion(std::string(R"({"model":"deepseek-r1","stream":)") +
                                         (stream ? "true}" : "false}")));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 404);
        EXPECT_EQ(r->header("Content-Type").value_or(""), "application/json");
        // vLLM's OpenAIServing._check_model() answer, byte for byte.
        EXPECT_EQ(r->body, R"({"error":{"message":"The model `deepseek-r1` does not exist.",)"
                           R"("type":"NotFoundError","param":"model","code":404}})");
    }
    auto text = request_once(
        mock.port(), http_request("POST", "/v1/completions", {{"Content-Type", "application/json"}},
                                  R"({"model":"x","prompt":"hi"})"));
    ASSERT_TRUE(text);
    EXPECT_EQ(text->status, 404);
}

TEST(MockModels, AServedModelIsAnsweredUnderItsNameEvenEscaped) {
    MockServer mock("r1", {"--models", "deepseek-ai/DeepSeek-R1,other"});
    ASSERT_TRUE(mock.ok());
    auto r = request_once(mock.port(), completion(R"({"model":"deepseek-ai\/DeepSeek-R1"})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(model_of(*r), "deepseek-ai/DeepSeek-R1");
    // A later duplicate wins, as in Python's json.
    r = request_once(mock.port(), completion(R"({"model":"nope","model":"other"})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(model_of(*r), "other");
    // No model, or "": the first one served (vLLM's default model).
    for (const char* body : {R"({"messages":[]})", R"({"model":""})"}) {
        r = request_once(mock.port(), completion(body));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << body << " " << r->body;
        EXPECT_EQ(model_of(*r), "deepseek-ai/DeepSeek-R1") << body;
    }
}

TEST(MockModels, StatsShowTheModelOfTheLastCompletion) {
    MockServer mock("m", {"--models", "served"});
    ASSERT_TRUE(mock.ok());
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->last_model) << s->raw;

    ASSERT_TRUE(request_once(mock.port(), completion(R"({"model":"served"})")));
    s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->last_model.value_or("<null>"), "served");

    // Recorded even when refused, escapes decoded by the reader.
    ASSERT_TRUE(request_once(mock.port(), completion(R"({"model":"caf\u00e9 \"x\""})")));
    s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->last_model.value_or("<null>"), "caf\xc3\xa9 \"x\"");

    ASSERT_TRUE(request_once(mock.port(), completion(R"({"stream":false})")));
    s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->last_model) << s->raw;

    ASSERT_TRUE(request_once(mock.port(), completion(R"({"model":"served"})")));
    ASSERT_TRUE(mock.reset());
    s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->last_model) << s->raw;
}

TEST(MockModels, ABadModelsFlagIsACommandLineError) {
    for (std::string bad : {"", "a,,b", "a,", "a,a", "with space", "quo\"te", "back\\slash"}) {
        auto r = run_command(mock_bin(), {"--models", bad});
        EXPECT_EQ(r.exit_code.value_or(-1), 2) << "--models '" << bad << "'";
        EXPECT_NE(r.err_text().find("--models"), std::string::npos) << r.err_text();
    }
}

}  // namespace
}  // namespace dsgw::it
