#pragma once
// One request and its response, as named phases in order (docs/architecture.md):
//
//   admit    the request's shape, the allowlist behind trusted proxies, the
//            API key (quotas will join here)
//   inspect  what routing needs from the request: on a listener with routes,
//            the JSON body's "model" (the body is read to its end first),
//            the path and the API key (inspect.cpp; prefix affinity will
//            read the prompt here)
//   route    the upstream, and what the balancer picks a server by
//   forward  100-continue, the rewritten head, a server and a connection
//            (upstream_connect.cpp), then the rest of the request body
//   relay    the response head, interim responses, the body (respond.cpp,
//            with the body loop of relay.cpp)
//   finish   the one end of every exchange (exchange.cpp, outcome.cpp): local reply,
//            ejection and metrics, keep-alive, the pool, the access log
//
// A phase that fails records a Failure and the exchange goes to finish.
// The connection reads the request head (connection.cpp) and runs one
// exchange per request; an Exchange object is reused for the next request.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/llm/prompt_blocks.hpp"
#include "deepseek_gateway/proxy/forward.hpp"
#include "deepseek_gateway/proxy/request_target.hpp"
#include "proxy/client_side.hpp"
#include "proxy/outcome.hpp"
#include "proxy/relay.hpp"
#include "proxy/relay_parser.hpp"
#include "proxy/upstream_connect.hpp"

#include <chrono>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dsgw::proxy {

class Exchange {
public:
    Exchange(ClientSide& client, std::pmr::memory_resource& blocks);
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    // A new request: a fresh parser for its head, limits from `client.rt`.
    RelayParser<true>& begin();
    // The head has been read: the clock of the access log starts.
    void head_read();
    // The head could not be read: the 4xx it is due (431, 413, 400), logged.
    net::Task<void> refuse_head(boost::system::error_code ec);
    // Request head bytes read (for the access log's bytes_in).
    void count_in(std::uint64_t n) { outcome_.bytes_in += n; }
    // Runs the phases, from admit to finish.
    net::Task<void> run();
    // The head timed out after some of it arrived: 408, not logged.
    net::Task<void> head_timed_out();

    // Both heads are gone: their memory goes back to the worker (an idle
    // keep-alive connection holds no arena block).
    void release();

    // Whether the connection may serve another request after this one.
    bool keep_alive() const { return outcome_.keep_alive; }
    // The request's body bytes still to come, or more of it buffered: when
    // the connection closes now, it lingers (see Connection::linger()).
    bool request_unread() const;

    // The client hung up: the server stops generating at once, a queued
    // request gives its place up.
    void on_client_gone();
    // A deadline of an upstream phase passed: the operation in progress on
    // the upstream connection ends with operation_aborted.
    void cancel_upstream();

private:
    // ---- admit (admit.cpp) ----
    bool admit_shape();
    net::Task<bool> admit_client();
    std::optional<std::string_view> check_request_shape();

    // ---- inspect (inspect.cpp): on listeners with routes (SPEC §8) and
    // listeners whose requests may go to a prefix_affinity upstream (§9) ----
    // The route: the model in the JSON body (read to its end first), the
    // path, the API key. False when the exchange ends here (a local reply:
    // an error, or the answer to GET /v1/models).
    bool hash_prompt();
    net::Task<bool> inspect();
    bool reads_body() const;
    net::Task<bool> read_body();
    bool take_body_bytes();
    bool end_body();
    bool answer_models();
    bool refuse_dot_segments();
    std::string_view request_path() const;
    bool choose_route();
    void answer(Failure f);
    void drop_read_body();
    std::uint64_t frame_read_body();

    // ---- route, forward (exchange.cpp); relay (respond.cpp) ----
    balancer::PickContext route();
    net::Task<bool> forward(const balancer::PickContext& ctx);
    net::Task<bool> relay();

    // Their steps. The coroutines keep few locals: GCC puts every local of
    // a coroutine in its frame, and Asio recycles frames up to ~1 KiB only.
    bool frame_request();
    bool build_request();
    void request_sent();
    net::Task<bool> send_slowly(const balancer::PickContext& ctx, SendStart sending);
    net::Task<bool> send_body();
    Framing begin_response();
    BodySource response_source();
    BodySink response_sink();
    bool relay_buffered();
    net::Task<bool> relay_rest();
    bool end_response(const RelayEnd& end);

    net::Task<bool> send_continue();
    net::Task<bool> read_response_head();
    net::Task<bool> forward_interim();
    void new_response_parser(std::pmr::memory_resource* mr);
    Framing choose_response_framing() const;

    // ---- the end ----
    // Records the failure that ends the exchange; the first one stands.
    void fail(Failure f) { outcome_.fail(std::move(f)); }
    // A server failed: counted, logged, maybe ejected; the connection is
    // closed, and the exchange fails with `reply` (status 0: nothing to say).
    void upstream_failed(const ServerFault& fault, Failure reply);
    // The one end of every exchange (see outcome.hpp): settle() the
    // upstream side, reply() when a failure is due, record_end().
    net::Task<void> finish(bool clean);
    void settle(bool clean);
    void record_end();
    net::Task<void> reply(const Failure& f) {
        return send_reply(client_, outcome_, f, request_unread(), out_, reply_);
    }

    ClientSide& client_;
    // The two heads (fields, target, reason, body piece lists) are allocated
    // here; released when the next request starts.
    std::pmr::monotonic_buffer_resource arena_;
    // The response heads after an interim (1xx) one (forward_interim()).
    std::pmr::monotonic_buffer_resource interim_arena_;
    std::optional<RelayParser<true>> req_;
    std::optional<RelayParser<false>> res_;
    Framing req_framing_ = Framing::none;
    Target target_;
    std::size_t pending_consume_ = 0;  // body bytes that went with the head

    UpstreamSide up_;
    std::string head_out_;
    std::string reply_;
    WriteList out_;
    Framing framing_ = Framing::none;  // of the response towards the client
    RelayEnd relayed_;                 // how the response body's relay ended
    RelayStart relay_start_;
    Outcome outcome_;
    std::string forwarded_for_;   // X-Forwarded-For to send (behind trusted proxies)
    bool sent_continue_ = false;  // our own 100 Continue went to the client
    bool framed_ = false;         // frame_request() ran (before the body was read)

    // The body read by inspect(): where its pieces are in client_.buf (as
    // offsets: the buffer may move while it grows), how much of the buffer
    // the parser took, the scan for "model", and that value rewritten
    // (JSON, quoted) when the route says so.
    bool body_read_ = false;
    std::size_t parsed_ = 0;
    std::vector<std::pair<std::size_t, std::size_t>> body_at_;
    std::vector<boost::asio::const_buffer> body_iov_;
    std::uint64_t body_bytes_ = 0;
    std::unique_ptr<llm::ModelScan> scan_;
    std::string model_out_;
    // The prompt's block hashes, for a prefix_affinity upstream, and the
    // body's pieces they were read from.
    std::vector<std::uint64_t> prompt_hashes_;
    std::vector<llm::BodyPiece> prompt_text_;
    balancer::PromptMatch prompt_;
    unsigned interim_count_ = 0;
};

}  // namespace dsgw::proxy
