// Routing by model (SPEC §8, issue 17) seen through a real client: the
// official `openai` npm package (tests/sdk/models.mjs, pinned in
// tests/sdk/package-lock.json) against the real gateway with two routes and
// two mock servers that serve different models. The SDK must get its answers
// from the right pool, raise NotFoundError with code model_not_found for an
// unknown model and BadRequestError for a missing or non-string one, list the
// models through the gateway's /v1/models and stream.
//
// Node.js and tests/sdk/node_modules come from scripts/install-deps.sh (which
// scripts/build.sh runs). Without them this test fails, saying so: CI must
// show that the SDK check ran, not skip it.

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace dsgw::it {
namespace {

namespace fs = std::filesystem;

const std::string kSdkDir = std::string(DSGW_SOURCE_DIR) + "/tests/sdk";

// The absolute path of a program on PATH (the harness exec()s without a search).
std::optional<std::string> which(const std::string& program) {
    auto r = run_command("/bin/sh", {"-c", "command -v " + program});
    if (!r.exit_code || *r.exit_code != 0 || r.out.empty()) return std::nullopt;
    return r.out.front();
}

std::string joined(const std::vector<std::string>& lines) {
    std::string t;
    for (const auto& l : lines) t += l + "\n";
    return t;
}

// A line that starts with `prefix` and has `part` somewhere after it.
bool has_line(const std::vector<std::string>& lines, const std::string& prefix,
              const std::string& part = "") {
    for (const auto& l : lines)
        if (l.rfind(prefix, 0) == 0 && l.find(part, prefix.size()) != std::string::npos)
            return true;
    return false;
}

// Two pools, each a mock server that serves (and lists at /v1/models) its own
// models, and a listener that routes to them by the body's "model", with no
// default upstream.
std::string routes_yaml(const MockServer& r1, const MockServer& v3) {
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
           "      - name: v3\n"
           "        match: {model: [deepseek-v3, deepseek-chat]}\n"
           "        upstream: v3-pool\n"
           "upstreams:\n"
           "  - name: r1-pool\n"
           "    servers: [{address: \"" +
           r1.address() +
           "\"}]\n"
           "    timeouts: {connect: 2s, first_byte: 30s, idle: 30s}\n"
           "  - name: v3-pool\n"
           "    servers: [{address: \"" +
           v3.address() +
           "\"}]\n"
           "    timeouts: {connect: 2s, first_byte: 30s, idle: 30s}\n"
           "logging:\n  level: info\n  access_log: stdout\n  format: text\n"
           "shutdown_timeout: 5s\n";
}

}  // namespace

TEST(OpenAiSdk, RoutesModelsAndErrorsAsTheOfficialClientSeesThem) {
    // What the test needs, or the way to get it.
    auto node = which("node");
    ASSERT_TRUE(node) << "node is not on PATH: run scripts/install-deps.sh (it installs Debian's "
                         "nodejs and npm, and tests/sdk/node_modules)";
    ASSERT_TRUE(fs::exists(kSdkDir + "/node_modules/openai/package.json"))
        << kSdkDir << "/node_modules has no openai package: run scripts/install-deps.sh "
        << "(npm ci in tests/sdk)";

    MockServer r1("r1", {"--models", "deepseek-r1,deepseek-r1-distill-qwen-32b"});
    MockServer v3("v3", {"--models", "deepseek-v3,deepseek-chat,deepseek-v3-base"});
    ASSERT_TRUE(r1.ok()) << "mock server r1 did not start (--models unknown?):\n"
                         << r1.process().tail(10);
    ASSERT_TRUE(v3.ok()) << "mock server v3 did not start (--models unknown?):\n"
                         << v3.process().tail(10);
    Gateway gw;
    ASSERT_TRUE(gw.start(routes_yaml(r1, v3))) << gw.logs();

    // What /v1/models must list: the routes' exact names (deepseek-v3,
    // deepseek-chat) and the servers' names that a route without
    // rewrite_model matches (deepseek-r1*, and deepseek-v3 once more), each
    // once; not deepseek-v3-base, which no route takes. The servers' lists
    // are fetched at start: wait until they are in (or give up and let the
    // client report what it sees).
    const std::string expect_ids =
        "deepseek-r1,deepseek-r1-distill-qwen-32b,deepseek-v3,deepseek-chat";
    auto deadline = Clock::now() + 5s;
    for (;;) {
        auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
        if ((r && r->status == 200 &&
             r->body.find("deepseek-r1-distill-qwen-32b") != std::string::npos) ||
            Clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(50ms);
    }

    const std::string base_url = "http://127.0.0.1:" + std::to_string(gw.port()) + "/v1";
    auto run = run_command(*node,
                           {kSdkDir + "/models.mjs", "--base-url", base_url, "--model",
                            "deepseek-r1", "--model", "deepseek-chat", "--expect-ids", expect_ids},
                           60s);
    const std::string out = joined(run.out);
    ASSERT_TRUE(run.exit_code) << "models.mjs did not finish in 60 s:\n" << out << run.err_text();
    EXPECT_EQ(*run.exit_code, 0) << "models.mjs:\n" << out << run.err_text();

    // The lines that show what the client met. Each model is answered by its
    // own pool (the mock's id is the system_fingerprint), plainly and streamed.
    const std::vector<std::pair<std::string, std::string>> wanted = {
        {"ok: create model=deepseek-r1: ",
         "response model \"deepseek-r1\", system_fingerprint \"r1\""},
        {"ok: stream model=deepseek-r1: ", "system_fingerprint \"r1\""},
        {"ok: create model=deepseek-chat: ",
         "response model \"deepseek-chat\", system_fingerprint \"v3\""},
        {"ok: stream model=deepseek-chat: ", "system_fingerprint \"v3\""},
        {"ok: create model=no-such-model: caught NotFoundError status=404 ",
         "type=\"invalid_request_error\" code=\"model_not_found\" param=\"model\""},
        {"ok: create without model: caught BadRequestError status=400", ""},
        {"ok: create model=42: caught BadRequestError status=400", "code=\"invalid_type\""},
        {"ok: models.list: ", ""},
        {"ok: models.retrieve deepseek-r1-distill-qwen-32b: ", ""},
        {"ok: models.retrieve no-such-model: caught NotFoundError status=404 ",
         "code=\"model_not_found\""},
        {"all checks passed", ""},
    };
    for (const auto& [prefix, part] : wanted)
        EXPECT_TRUE(has_line(run.out, prefix, part))
            << "no line starting with: " << prefix << (part.empty() ? "" : "... with: ") << part;
}

}  // namespace dsgw::it
