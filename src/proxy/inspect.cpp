// The inspect phase on listeners with routes (SPEC §8): the JSON body read to
// its end and scanned for its top-level "model", the route it takes (model,
// path, API key), the model rewritten; and GET /v1/models answered here.

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/config/routes.hpp"
#include "deepseek_gateway/llm/models_list.hpp"
#include "deepseek_gateway/llm/prompt_blocks.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/proxy/local_reply.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"
#include "deepseek_gateway/util/json.hpp"
#include "proxy/exchange.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/pct_string_view.hpp>

#include <algorithm>

namespace dsgw::proxy {

namespace {

namespace beast = boost::beast;
using metrics::ConfigMetrics;
using net::Task;

// A read of a routed body asks for at least this much: the body is wanted
// whole, and a 256 KiB prompt should not take 64 reads.
constexpr std::size_t kBodyRead = 64 * 1024;
// A body's Content-Length is believed up to this much before it arrives.
constexpr std::uint64_t kReserveMax = 256 * 1024;

// "application/json", with parameters or not, in any case.
bool is_json(std::string_view content_type) {
    auto type = content_type.substr(0, content_type.find(';'));
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
    return beast::iequals(type, "application/json");
}

Failure openai_error(unsigned status, std::string message, std::string_view type,
                     const std::string_view* param, const std::string_view* code) {
    Failure f{status, false, std::move(message)};
    f.body = openai_error_body(f.message, type, param, code);
    return f;
}

constexpr std::string_view kInvalidRequest = "invalid_request_error";
constexpr std::string_view kModelParam = "model";

// OpenAI's answer to a model that does not exist, or that this client may
// not use (SPEC §8: the two look the same).
Failure model_not_found(std::string_view model) {
    static constexpr std::string_view code = "model_not_found";
    std::string message = "The model '";
    message += model;
    message += "' does not exist or you do not have access to it.";
    return openai_error(404, std::move(message), kInvalidRequest, &kModelParam, &code);
}

// OpenAI's answer to a path it does not serve; `why` says more when set.
Failure invalid_url(unsigned status, std::string_view method, std::string_view path,
                    std::string_view why = {}) {
    std::string message = "Invalid URL (";
    message += method;
    message += ' ';
    message += path;
    message += ')';
    message += why;
    return openai_error(status, std::move(message), kInvalidRequest, nullptr, nullptr);
}

}  // namespace

// The request's path, without its query (of the absolute form too).
std::string_view Exchange::request_path() const {
    const auto target = target_.form == TargetForm::absolute ? target_.path : req_->head().target();
    return target.substr(0, target.find('?'));
}

// ---- inspect ----------------------------------------------------------------

// The prompt's block hashes in prompt_, when the body read has one and the
// upstream chosen is prefix_affinity.
bool Exchange::hash_prompt() {
    const auto& cfg = up_.upstream->config();
    if (cfg.balancer != config::BalancerKind::prefix_affinity) return false;
    const char* base = static_cast<const char*>(client_.buf.data().data());
    prompt_text_.clear();
    for (const auto& [off, len] : body_at_) {
        // Pieces that follow each other in the buffer are one.
        if (!prompt_text_.empty() &&
            prompt_text_.back().data + prompt_text_.back().size == base + off)
            prompt_text_.back().size += len;
        else
            prompt_text_.push_back({base + off, len});
    }
    if (!llm::prompt_blocks(*scan_, prompt_text_, cfg.prefix_affinity.block_bytes,
                            config::PrefixAffinityConfig::kMaxBlocks, prompt_hashes_))
        return false;
    prompt_.blocks = prompt_hashes_;
    return true;
}

Task<bool> Exchange::inspect() {
    if (!client_.lc->routes.empty() && (refuse_dot_segments() || answer_models()))
        co_return false;
    if (reads_body()) {
        framed_ = true;
        // Expect: 100-continue: the body is needed before a server is chosen.
        if (frame_request()) {
            const bool sent = co_await send_continue();
            if (!sent) {
                client_.on_gone();
                co_return false;
            }
        }
        const bool read = co_await read_body();
        if (!read) co_return false;
    }
    co_return choose_route();
}

// A path with a "." or ".." segment (also written %2e) is refused on a
// listener with routes: a path prefix must not be met by
// "/v1/embeddings/../chat/completions". True when that is the answer due.
bool Exchange::refuse_dot_segments() {
    const auto path = request_path();
    std::size_t at = 0;
    bool dots = false;
    while (at <= path.size() && !dots) {
        const auto end = std::min(path.find('/', at), path.size());
        std::size_t n = 0;  // dots in the segment, or 3 once it holds anything else
        for (std::size_t i = at; i < end && n < 3; ++i) {
            if (path[i] == '.') {
                ++n;
            } else if (path[i] == '%' && i + 2 < end && path[i + 1] == '2' &&
                       (path[i + 2] == 'e' || path[i + 2] == 'E')) {
                ++n;
                i += 2;
            } else {
                n = 3;
            }
        }
        dots = n == 1 || n == 2;
        at = end + 1;
    }
    if (!dots) return false;
    answer(invalid_url(400, req_->head().method_string(), path, ": a path segment is . or .."));
    return true;
}

// POST with a JSON body: its "model" routes it.
bool Exchange::reads_body() const {
    const auto& head = req_->head();
    return head.method() == http::verb::post && is_json(head[Known::content_type]);
}

// Reads the whole body into the client's buffer, scanning it as it comes.
// False when the exchange failed (a 400, 408 or 413 is due, or the client
// left).
Task<bool> Exchange::read_body() {
    // Made on a connection's first routed body: others hold only a pointer.
    if (!scan_) scan_ = std::make_unique<llm::ModelScan>();
    scan_->reset();
    scan_->capture_prompt(client_.lc->prompt_capture);
    body_at_.clear();
    body_bytes_ = 0;
    parsed_ = 0;
    req_->eager(true);
    // With a Content-Length the buffer grows once for the usual body; a
    // larger one grows (doubling) as its bytes arrive, so a client cannot
    // make the gateway hold memory it has not filled.
    if (const auto n = req_->content_length(); n && *n > client_.buf.size())
        client_.buf.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*n, kReserveMax)) +
                            kBodyRead);
    for (;;) {
        if (!take_body_bytes()) co_return false;
        if (req_->is_done()) break;
        client_.deadline.arm(Phase::request_body, client_.rt->config->limits.client_idle);
        auto [ec, n] =
            co_await client_.stream.read_some(client_.buf, std::max(client_.read_size, kBodyRead));
        const bool late = client_.deadline.timed_out(Phase::request_body);
        client_.deadline.disarm();
        if (ec || late) {
            outcome_.keep_alive = false;
            if (late) {
                fail({408, true, "request body not received in time"});
            } else {
                client_.on_gone();
                fail({});
            }
            co_return false;
        }
        client_.buf.commit(n);
    }
    co_return end_body();
}

// Parses what the buffer holds beyond what was parsed, and scans the body
// bytes it gives. False when the body is refused (its framing, its size, or
// JSON that cannot become valid).
bool Exchange::take_body_bytes() {
    const auto data = client_.buf.data();
    const char* base = static_cast<const char*>(data.data());
    boost::system::error_code ec;
    req_->clear_pieces();
    parsed_ += req_->put(boost::asio::const_buffer(base + parsed_, data.size() - parsed_), ec);
    if (ec == beast::http::error::need_more) ec = {};
    bool json = true;
    for (const auto& p : req_->pieces()) {
        const char* at = static_cast<const char*>(p.data());
        body_at_.emplace_back(static_cast<std::size_t>(at - base), p.size());
        body_bytes_ += p.size();
        json = scan_->feed(at, p.size());
        if (!json) break;
    }
    req_->clear_pieces();
    if (ec) {
        fail(reply_to_bad_request(ec));
        return false;
    }
    if (!json) {
        end_body();
        return false;
    }
    return true;
}

// The body has been read (or has turned out not to be JSON): its "model".
bool Exchange::end_body() {
    body_read_ = true;
    if (!scan_->finish()) {
        std::string message = "We could not parse the JSON body of your request: ";
        message += scan_->error();
        message += " at byte ";
        message += std::to_string(scan_->error_offset());
        message += '.';
        auto f = openai_error(400, std::move(message), kInvalidRequest, nullptr, nullptr);
        f.close = !req_->is_done();  // the rest of the body is not read
        fail(std::move(f));
        return false;
    }
    if (scan_->model_kind() == llm::ModelScan::Model::string) outcome_.model = scan_->model();
    return true;
}

// A local answer to a request whose body may not have been read: the
// connection closes after it then (its body would be read as a request).
void Exchange::answer(Failure f) {
    if (!req_->is_done()) f.close = true;
    fail(std::move(f));
}

// ---- the route --------------------------------------------------------------

// The first route that fits; else the default upstream; else the error a
// client of OpenAI would get. False when the exchange ends with it.
bool Exchange::choose_route() {
    const auto& lc = *client_.lc;
    const auto path = request_path();
    const bool has_model = body_read_ && scan_->model_kind() == llm::ModelScan::Model::string;
    const std::string* model = has_model ? &scan_->model() : nullptr;
    const int r = config::match_route(lc, path, model);
    model_out_.clear();
    if (r >= 0) {
        const auto& route = lc.routes[static_cast<std::size_t>(r)];
        const bool key_may =
            route.api_keys.empty() || std::find(route.api_keys.begin(), route.api_keys.end(),
                                                outcome_.api_key) != route.api_keys.end();
        if (key_may) {
            outcome_.route = r;
            if (has_model && !route.rewrite_model.empty()) {
                model_out_ = '"';
                util::append_json_escaped(model_out_, route.rewrite_model);
                model_out_ += '"';
            }
            return true;
        }
    } else if (lc.has_upstream()) {
        outcome_.route = ConfigMetrics::kDefaultRoute;
        return true;
    }
    // Nothing this client may use.
    if (has_model) {
        answer(model_not_found(*model));
    } else if (body_read_) {
        // JSON without a string "model": OpenAI's words for both.
        static constexpr std::string_view invalid_type = "invalid_type";
        if (scan_->model_kind() == llm::ModelScan::Model::absent)
            answer(openai_error(400, "you must provide a model parameter", kInvalidRequest, nullptr,
                                nullptr));
        else
            answer(openai_error(400, "Invalid type for 'model': expected a string.",
                                kInvalidRequest, &kModelParam, &invalid_type));
    } else {
        answer(invalid_url(404, req_->head().method_string(), path));
    }
    return false;
}

// The body read by read_body(), in body_iov_, with the model rewritten when
// the route says so. Returns its length.
std::uint64_t Exchange::frame_read_body() {
    const char* base = static_cast<const char*>(client_.buf.data().data());
    body_iov_.clear();
    // The body bytes [from, to), from the pieces as they lie in the buffer.
    auto emit = [&](std::uint64_t from, std::uint64_t to) {
        std::uint64_t at = 0;
        for (const auto& [off, len] : body_at_) {
            const auto b = std::max<std::uint64_t>(from, at);
            const auto e = std::min<std::uint64_t>(to, at + len);
            if (b < e) body_iov_.emplace_back(base + off + (b - at), e - b);
            at += len;
        }
    };
    if (model_out_.empty()) {
        emit(0, body_bytes_);
        return body_bytes_;
    }
    const auto begin = scan_->model_begin();
    const auto end = scan_->model_end();
    emit(0, begin);
    body_iov_.emplace_back(model_out_.data(), model_out_.size());
    emit(end, body_bytes_);
    return body_bytes_ - (end - begin) + model_out_.size();
}

// ---- GET /v1/models ---------------------------------------------------------

// GET /v1/models and /v1/models/{id}: the models a client may name, answered
// here (SPEC §8). True when that is the answer due.
bool Exchange::answer_models() {
    static constexpr std::string_view kModels = "/v1/models";
    if (req_->head().method() != http::verb::get) return false;
    const auto path = request_path();
    if (!path.starts_with(kModels)) return false;
    auto rest = path.substr(kModels.size());
    if (!rest.empty() && rest[0] != '/') return false;  // "/v1/modelsX"
    if (rest == "/") rest = {};
    const auto& rt = *client_.rt;
    const auto ids =
        llm::client_models(*client_.lc, [&rt](std::size_t u) { return rt.upstream(u).models(); });
    if (rest.empty()) {
        Failure list{200, false};
        list.body = llm::models_list_body(ids);
        answer(std::move(list));
        return true;
    }
    // The id as the client wrote it, or percent-encoded ("a%2Fb" for "a/b").
    const auto encoded = boost::urls::make_pct_string_view(rest.substr(1));
    const auto id = encoded ? encoded->decode() : std::string(rest.substr(1));
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
        answer(model_not_found(id));
        return true;
    }
    Failure one{200, false};
    one.body = llm::model_body(id);
    answer(std::move(one));
    return true;
}

}  // namespace dsgw::proxy
