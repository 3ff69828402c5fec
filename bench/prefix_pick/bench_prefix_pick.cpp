// What a prefix_affinity routing decision costs (issue 18: under 5 µs at 100k
// remembered blocks). Four servers, a table of 1M entries holding 100k blocks
// (1,000 groups of 100 blocks); chat bodies of 16 KiB (32 blocks of 512
// bytes) whose first 24 blocks are a group's system prompt.
//
//   scan          ModelScan over the body, as routing does anyway
//   scan+hash     the same noting the prompt's parts, plus their block hashes
//   pick hit      pick() for a prompt whose prefix is remembered (lookups up
//                 to the first unknown block, the bound, the table written)
//   pick new      pick() for a prompt never seen (rendezvous)
//   least_conn    least_conn's pick(), for scale
// Each line: ns per operation, best of 5 rounds; "x2" runs two threads at
// once on the same balancer (the table is shared and lock-free).

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/llm/model_scan.hpp"
#include "deepseek_gateway/llm/prompt_blocks.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using dsgw::balancer::PickContext;
using dsgw::balancer::PromptMatch;
using dsgw::upstream::UpstreamServer;
namespace ip = boost::asio::ip;

constexpr std::size_t kBlockBytes = 512;
constexpr int kGroups = 1000;

std::string text(std::uint64_t seed, std::size_t n) {
    static const char* words[] = {"the ",    "model ", "cache ", "prefix ", "server ", "token ",
                                  "answer ", "tools ", "user ",  "system ", "reads ",  "keeps "};
    std::string s;
    while (s.size() < n) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        s += words[(seed >> 33) % 12];
    }
    s.resize(n);
    return s;
}

// A chat body: the group's system prompt (`system` bytes) and a question.
std::string body(int group, std::uint64_t question, std::size_t system, std::size_t ask) {
    return R"({"model":"deepseek-r1","stream":true,"messages":[{"role":"system","content":")" +
           text(static_cast<std::uint64_t>(group) + 1, system) +
           R"("},{"role":"user","content":")" + text(question * 7919 + 13, ask) + R"("}]})";
}

std::vector<std::uint64_t> blocks_of(const std::string& b) {
    dsgw::llm::ModelScan scan;
    scan.capture_prompt(kBlockBytes * 1024);
    scan.feed(b.data(), b.size());
    scan.finish();
    std::vector<std::uint64_t> out;
    const dsgw::llm::BodyPiece piece{b.data(), b.size()};
    dsgw::llm::prompt_blocks(scan, {&piece, 1}, kBlockBytes, 1024, out);
    return out;
}

// Best of 5 rounds of `n` calls of f(i), in ns per call; with `threads` > 1
// each thread makes the n calls at once.
double measure(int n, int threads, const std::function<void(int, int)>& f) {
    double best = 1e18;
    for (int round = 0; round < 5; ++round) {
        const auto t0 = Clock::now();
        std::vector<std::thread> ts;
        for (int t = 1; t < threads; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < n; ++i) f(t, i);
            });
        for (int i = 0; i < n; ++i) f(0, i);
        for (auto& t : ts) t.join();
        const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
        best = std::min(best, ns / n);
    }
    return best;
}

}  // namespace

int main() {
    std::vector<std::unique_ptr<UpstreamServer>> owned;
    std::vector<UpstreamServer*> servers;
    for (int i = 0; i < 4; ++i) {
        owned.push_back(std::make_unique<UpstreamServer>(
            "10.0.0." + std::to_string(i + 1) + ":8000",
            ip::tcp::endpoint(ip::make_address("127.0.0.1"), static_cast<unsigned short>(8000 + i)),
            1));
        servers.push_back(owned.back().get());
    }
    dsgw::config::PrefixAffinityConfig cfg;
    cfg.block_bytes = kBlockBytes;
    auto pa = dsgw::balancer::make_prefix_affinity(servers, cfg, nullptr);
    auto lc = dsgw::balancer::make_least_conn(servers);

    // 100k blocks remembered: each group's prompt of 100 blocks once.
    for (int g = 0; g < kGroups; ++g) {
        auto b = blocks_of(body(g, 0, 100 * kBlockBytes - 200, 10));
        PromptMatch m{b};
        PickContext ctx;
        ctx.prompt = &m;
        pa->pick(ctx);
    }

    // The requests measured: 16 KiB, 24 blocks of system prompt.
    constexpr int kBodies = 256;
    std::vector<std::string> bodies;
    std::vector<std::vector<std::uint64_t>> hits;
    for (int i = 0; i < kBodies; ++i) {
        bodies.push_back(body(i % kGroups, static_cast<std::uint64_t>(i), 24 * kBlockBytes, 4000));
        hits.push_back(blocks_of(bodies.back()));
    }
    // The hit prompts' groups were remembered with 100-block prompts whose
    // first blocks are the same system prompt text: warm them as requests.
    for (auto& h : hits) {
        PromptMatch m{h};
        PickContext ctx;
        ctx.prompt = &m;
        pa->pick(ctx);
    }

    std::printf("body %zu bytes, %zu blocks of %zu; table of %zu entries, ~%d blocks remembered\n",
                bodies[0].size(), hits[0].size(), kBlockBytes, std::size_t{1} << 20,
                kGroups * 100 + 2 * kBodies);
    const int n = 20000;
    dsgw::llm::ModelScan scans[2];
    std::vector<std::uint64_t> outs[2];
    const double scan_ns = measure(n, 1, [&](int t, int i) {
        auto& b = bodies[static_cast<std::size_t>(i % kBodies)];
        scans[t].reset();
        scans[t].feed(b.data(), b.size());
        scans[t].finish();
    });
    const double hash_ns = measure(n, 1, [&](int t, int i) {
        auto& b = bodies[static_cast<std::size_t>(i % kBodies)];
        scans[t].reset();
        scans[t].capture_prompt(kBlockBytes * 1024);
        scans[t].feed(b.data(), b.size());
        scans[t].finish();
        const dsgw::llm::BodyPiece piece{b.data(), b.size()};
        dsgw::llm::prompt_blocks(scans[t], {&piece, 1}, kBlockBytes, 1024, outs[t]);
    });
    std::printf("%-22s %9.0f ns\n", "scan", scan_ns);
    std::printf("%-22s %9.0f ns  (+%.0f ns)\n", "scan+hash", hash_ns, hash_ns - scan_ns);
    for (int threads : {1, 2}) {
        const char* x = threads == 1 ? "" : " x2";
        auto pick = [&](std::vector<std::vector<std::uint64_t>>& set) {
            return [&](int, int i) {
                PromptMatch m{set[static_cast<std::size_t>(i % kBodies)]};
                PickContext ctx;
                ctx.prompt = &m;
                auto* s = pa->pick(ctx);
                if (!s) std::abort();
            };
        };
        std::printf("%-22s %9.0f ns\n", (std::string("pick hit") + x).c_str(),
                    measure(n, threads, pick(hits)));
        // New prompts: 32 fresh hashes per call (drawn in the loop, ~30 ns of
        // the figure), so that none is remembered from an earlier call.
        std::uint64_t seeds[2] = {1, 2};
        std::vector<std::uint64_t> fresh[2] = {std::vector<std::uint64_t>(32),
                                               std::vector<std::uint64_t>(32)};
        std::printf("%-22s %9.0f ns\n", (std::string("pick new") + x).c_str(),
                    measure(n, threads, [&](int t, int) {
                        for (auto& h : fresh[t]) {
                            seeds[t] += 0x9e3779b97f4a7c15ull;
                            h = seeds[t] * 0xbf58476d1ce4e5b9ull;
                        }
                        PromptMatch m{fresh[t]};
                        PickContext ctx;
                        ctx.prompt = &m;
                        if (!pa->pick(ctx)) std::abort();
                    }));
        std::printf("%-22s %9.0f ns\n", (std::string("least_conn") + x).c_str(),
                    measure(n, threads, [&](int, int) {
                        PickContext ctx;
                        if (!lc->pick(ctx)) std::abort();
                    }));
    }
}
