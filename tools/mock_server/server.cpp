#include "server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <type_traits>
#include <variant>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "json_util.hpp"

namespace mock {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);

constexpr std::uint32_t kHeaderLimit = 1u << 20;          // request head
constexpr std::uint64_t kBodyLimit = 4ull << 30;          // request body
constexpr std::size_t kScratchSize = 64 * 1024;           // echo / discard buffer
constexpr std::size_t kPipelineCap = 1u << 20;            // bytes buffered while answering
constexpr std::size_t kKeepCapacity = 1u << 20;           // shrink buffers above this
constexpr std::string_view kDefaultModel = "deepseek-mock";
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kTlsShutdownWait = std::chrono::milliseconds(500);

// The verified client certificate's subject (RFC 2253), or "".
std::string peer_subject(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len > 0 ? len : 0));
  BIO_free(bio);
  return out;
}

using Parser = http::request_parser<http::buffer_body>;

std::string_view reason(unsigned status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string_view error_type(unsigned status) {
  if (status == 429) return "rate_limit_error";
  if (status == 401 || status == 403) return "authentication_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

void append_error_json(std::string& out, unsigned status, std::string_view message) {
  out += "{\"error\":{\"message\":\"";
  append_json_escaped(out, message);
  out += "\",\"type\":\"";
  out += error_type(status);
  out += "\",\"param\":null,\"code\":";
  append_uint(out, status);
  out += "}}";
}

enum class Framing { length, chunked, until_close };

enum class Route {
  chat,
  text,
  models,
  health,
  echo,
  metrics,
  stats,
  reset,
  load,
  not_found,
  bad_method
};

Route route_of(http::verb method, std::string_view path, std::string_view& allow) {
  auto only = [&](http::verb want, Route r, std::string_view allowed) {
    if (method == want || (want == http::verb::get && method == http::verb::head)) return r;
    allow = allowed;
    return Route::bad_method;
  };
  if (path == "/v1/chat/completions") return only(http::verb::post, Route::chat, "POST");
  if (path == "/v1/completions") return only(http::verb::post, Route::text, "POST");
  if (path == "/v1/models") return only(http::verb::get, Route::models, "GET, HEAD");
  if (path == "/health") return only(http::verb::get, Route::health, "GET, HEAD");
  if (path == "/mock/echo") return Route::echo;
  if (path == "/mock/stats") return only(http::verb::get, Route::stats, "GET, HEAD");
  if (path == "/mock/reset") return only(http::verb::post, Route::reset, "POST");
  if (path == "/metrics") return only(http::verb::get, Route::metrics, "GET, HEAD");
  if (path == "/mock/load") return only(http::verb::post, Route::load, "POST");
  return Route::not_found;
}

// Behaviour of one request: the flags, overridden by X-Mock-* headers.
struct Plan {
  std::uint32_t tokens;
  std::uint32_t token_delay_ms;
  std::uint32_t first_token_delay_ms;
  unsigned fail_status;
  std::int64_t close_after;
  bool hang;
  bool until_close;  // a stream framed by the end of the connection, as for HTTP/1.0
  std::uint64_t prefill_us;  // simulated prefill, on top of the first-token delay
};

// The wait before the first token (stream) or the answer (non-stream).
std::uint64_t first_delay_us(const Plan& p) {
  return p.first_token_delay_ms * std::uint64_t{1000} + p.prefill_us;
}

// A completion's usage: prompt tokens, and the cached ones when the prefix
// cache is simulated.
struct Usage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t cached_tokens = 0;
  bool cache = false;
};

enum class Phase { idle, generating, finishing, done };

bool is_http_error(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

thread_local std::uint64_t t_response_counter = 0;

// One connection; Stream is tcp::socket or ssl::stream<tcp::socket> (after its
// handshake).
template <class Stream>
class Session {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  Session(Server& server, Stream sock)
      : srv_(server), stats_(server.stats()), sock_(std::move(sock)), timer_(sock_.get_executor()) {}

  asio::awaitable<void> run();

 private:
  // ---- response heads ----
  void head(unsigned status, std::string_view ctype, Framing f, std::uint64_t len,
            std::string_view extra = {}) {
    out_ += "HTTP/1.1 ";
    append_uint(out_, status);
    out_ += ' ';
    out_ += reason(status);
    out_ += "\r\nServer: deepseek-mock\r\nX-Mock-Server: ";
    out_ += srv_.id();
    if (!ctype.empty()) {
      out_ += "\r\nContent-Type: ";
      out_ += ctype;
    }
    switch (f) {
      case Framing::length:
        out_ += "\r\nContent-Length: ";
        append_uint(out_, len);
        break;
      case Framing::chunked: out_ += "\r\nTransfer-Encoding: chunked"; break;
      case Framing::until_close: break;
    }
    if (close_) {
      out_ += "\r\nConnection: close";
    } else if (http10_) {
      out_ += "\r\nConnection: keep-alive";
    }
    out_ += "\r\n";
    out_ += extra;
    out_ += "\r\n";
  }

  // Build a complete response with a small body into out_.
  void simple(unsigned status, std::string_view ctype, std::string_view body,
              std::string_view extra = {}) {
    out_.clear();
    head(status, ctype, Framing::length, body.size(), extra);
    if (!head_only_) out_ += body;
  }

  void error(unsigned status, std::string_view message, std::string_view extra = {}) {
    scratch_json_.clear();
    append_error_json(scratch_json_, status, message);
    simple(status, "application/json", scratch_json_, extra);
  }

  // ---- I/O ----
  asio::awaitable<bool> write_out(std::string_view tail = {}) {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out_), asio::buffer(tail)};
    auto [ec, n] = co_await asio::async_write(sock_, bufs, tok);
    (void)n;
    if (ec) {
      write_failed_ = true;
      if (ec != asio::error::operation_aborted) note_peer_gone("write failed: " + ec.message());
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> sleep_ms(std::uint32_t ms) {
    timer_.expires_after(std::chrono::milliseconds(ms));
    auto [ec] = co_await timer_.async_wait(tok);
    co_return !ec;
  }

  asio::awaitable<bool> sleep_us(std::uint64_t us) {
    timer_.expires_after(std::chrono::microseconds(us));
    auto [ec] = co_await timer_.async_wait(tok);
    co_return !ec;
  }

  // True when the peer sends something (or closes) within `ms`.
  asio::awaitable<bool> idle_wait(std::uint32_t ms) {
    auto& raw = [this]() -> tcp::socket& {
      if constexpr (kTls) return sock_.next_layer();
      else return sock_;
    }();
    auto which = co_await (raw.async_wait(tcp::socket::wait_read, tok) ||
                           sleep_void(ms * std::uint64_t{1000}));
    co_return which.index() == 0;
  }

  asio::awaitable<void> sleep_void(std::uint64_t us) {
    try {
      co_await sleep_us(us);
    } catch (const std::exception&) {
    }
  }

  // Read the request body. Sink: collect into body_, or hash/discard.
  enum class Sink { collect, hash };
  asio::awaitable<bool> read_body(Parser& p, Sink sink) {
    body_.clear();
    body_bytes_ = 0;
    body_hash_ = kFnvOffset;
    if (p.is_done()) co_return true;
    if (continue_) {
      continue_ = false;
      static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(k100), tok);
      (void)n;
      if (ec) co_return false;
    }
    if (sink == Sink::hash && !scratch_) scratch_ = std::make_unique<char[]>(kScratchSize);
    while (!p.is_done()) {
      char* dst;
      std::size_t room;
      std::size_t old = body_.size();
      if (sink == Sink::collect) {
        auto cl = p.content_length_remaining();
        room = cl ? static_cast<std::size_t>(std::min<std::uint64_t>(*cl, 64ull << 20)) : 16384;
        if (room == 0) room = 16384;
        body_.resize(old + room);
        dst = body_.data() + old;
      } else {
        room = kScratchSize;
        dst = scratch_.get();
      }
      p.get().body().data = dst;
      p.get().body().size = room;
      auto [ec, n] = co_await http::async_read(sock_, buf_, p, tok);
      (void)n;
      std::size_t got = room - p.get().body().size;
      if (sink == Sink::collect) {
        body_.resize(old + got);
      } else {
        body_hash_ = fnv1a64(body_hash_, reinterpret_cast<const unsigned char*>(dst), got);
      }
      body_bytes_ += got;
      if (ec == http::error::need_buffer) continue;
      if (ec) {
        if (is_http_error(ec) && ec != http::error::partial_message) {
          close_ = true;
          unsigned status = ec == http::error::body_limit ? 413 : 400;
          error(status, "bad request body: " + ec.message());
          co_await write_out();
        }
        co_return false;
      }
    }
    co_return true;
  }

  // Keep a read pending while a response is produced: a FIN or an error from
  // the client means it went away. Pipelined bytes are kept in buf_.
  asio::awaitable<void> watch() {
    try {
      for (;;) {
        if (buf_.size() >= kPipelineCap) {
          asio::steady_timer forever(sock_.get_executor(), asio::steady_timer::time_point::max());
          co_await forever.async_wait(tok);
          co_return;
        }
        auto [ec, n] = co_await sock_.async_read_some(buf_.prepare(4096), tok);
        if (!ec) {
          buf_.commit(n);
          continue;
        }
        if (ec == asio::error::operation_aborted) co_return;
        peer_closed_ = true;
        if (phase_ == Phase::generating) note_peer_gone("client closed: " + ec.message());
        co_return;
      }
    } catch (const std::exception&) {
    }
  }

  void note_peer_gone(const std::string& why) {
    if (!track_ || cancel_recorded_ || phase_ == Phase::done || phase_ == Phase::idle) return;
    cancel_recorded_ = true;
    stats_.record_peer_close();
    if (!srv_.options().quiet) srv_.log("response cancelled: " + why);
  }

  void begin_response() {
    phase_ = Phase::generating;
    track_ = true;
    peer_closed_ = write_failed_ = abort_close_ = cancel_recorded_ = false;
  }

  // End of the connection. A clean end sends a TLS close_notify (waiting a
  // moment for the peer's) and a FIN; an abort (--close-after-tokens, a peer
  // that left, a failed write) just closes, so a TLS peer sees the stream cut.
  asio::awaitable<void> close_stream() {
    boost::system::error_code ignored;
    const bool graceful = !abort_close_ && !peer_closed_ && !write_failed_;
    if constexpr (kTls) {
      if (graceful) {
        timer_.expires_after(kTlsShutdownWait);
        try {
          co_await (sock_.async_shutdown(tok) || timer_.async_wait(tok));
        } catch (const std::exception&) {
        }
      }
    }
    auto& s = sock_.lowest_layer();
    if (graceful) s.shutdown(tcp::socket::shutdown_send, ignored);
    s.close(ignored);
  }

  void append_tls_echo(std::string& b) {
    if constexpr (kTls) {
      SSL* ssl = sock_.native_handle();
      b += ",\"tls\":{\"version\":\"";
      b += SSL_get_version(ssl);
      b += "\",\"cipher\":\"";
      b += SSL_get_cipher_name(ssl);
      b += "\",\"sni\":";
      const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      if (sni) {
        b += '"';
        append_json_escaped(b, sni);
        b += '"';
      } else {
        b += "null";
      }
      b += ",\"client_subject\":";
      std::string subject = peer_subject(ssl);
      if (!subject.empty()) {
        b += '"';
        append_json_escaped(b, subject);
        b += '"';
      } else {
        b += "null";
      }
      b += ",\"session_reused\":";
      b += SSL_session_reused(ssl) ? "true" : "false";
      b += '}';
    } else {
      (void)b;
    }
  }

  // ---- endpoints ----
  asio::awaitable<bool> hang() {
    begin_response();
    co_await watch();
    co_return false;
  }

  // --max-batch: wait in the batch's queue for a place to run, while
  // watching for the client leaving. False when it left.
  asio::awaitable<bool> take_turn(Batch::Ticket& t) {
    Batch& batch = srv_.batch();
    if (srv_.options().max_batch == 0) {
      batch.enter(t);
      co_return true;
    }
    // The wake-up comes from the thread that frees a place: it posts to this
    // connection's thread, and keeps the timer alive until then.
    auto wakeup = std::make_shared<asio::steady_timer>(sock_.get_executor(),
                                                       asio::steady_timer::time_point::max());
    t.wake = [wakeup] { asio::post(wakeup->get_executor(), [wakeup] { wakeup->cancel(); }); };
    if (batch.enter(t)) co_return true;
    co_await (await_turn(t, *wakeup) || watch());
    const bool running = batch.running(t);
    co_return running && !peer_closed_;
  }

  asio::awaitable<void> await_turn(Batch::Ticket& t, asio::steady_timer& wakeup) {
    try {
      for (;;) {
        const bool running = srv_.batch().running(t);
        if (running) co_return;
        auto [ec] = co_await wakeup.async_wait(tok);
        (void)ec;  // cancelled: the wake-up, or the client left (watch() ended)
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return;
      }
    } catch (const std::exception&) {
    }
  }

  // "usage":{...} of the current completion.
  void append_usage(std::string& b, std::uint32_t completion_tokens) const {
    b += "\"usage\":{\"prompt_tokens\":";
    append_uint(b, usage_.prompt_tokens);
    b += ",\"completion_tokens\":";
    append_uint(b, completion_tokens);
    b += ",\"total_tokens\":";
    append_uint(b, usage_.prompt_tokens + completion_tokens);
    if (usage_.cache) {
      b += ",\"prompt_tokens_details\":{\"cached_tokens\":";
      append_uint(b, usage_.cached_tokens);
      b += '}';
    }
    b += '}';
  }

  // stream_options.include_usage: the chunk with "choices":[] and the usage
  // that goes before [DONE], framed like the token events.
  void append_usage_event(std::uint32_t completion_tokens) {
    auto& e = scratch_json_;
    e = "data: ";
    constexpr std::string_view kChoices = "\"choices\":[";
    e.append(event_prefix_, 0, event_prefix_.rfind(kChoices) + kChoices.size());
    e += "],";
    append_usage(e, completion_tokens);
    e += "}\n\n";
    if (chunked_events_) {
      append_hex(out_, e.size());
      out_ += "\r\n";
    }
    out_ += e;
    if (chunked_events_) out_ += "\r\n";
  }

  asio::awaitable<bool> completion(Parser& p, bool chat, const Plan& plan, InFlight& inflight);
  asio::awaitable<void> produce_stream(bool chat, const Plan& plan, InFlight& inflight);
  asio::awaitable<bool> stream(bool chat, const Plan& plan, InFlight& inflight);
  asio::awaitable<bool> unary(bool chat, const Plan& plan, InFlight& inflight);
  void build_echo(const Parser& p);
  bool apply_headers(const http::request<http::buffer_body>& req, Plan& plan, bool record_ids,
                     std::string& err);
  void build_event_prefix(bool chat, const char* object);
  void append_event(std::uint32_t i, bool last, bool chat);

  Server& srv_;
  Stats& stats_;
  Stream sock_;
  asio::steady_timer timer_;
  beast::flat_buffer buf_;
  std::string out_;
  std::string body_;
  std::string resp_body_;
  std::string scratch_json_;
  std::string content_scratch_;
  std::string event_prefix_;
  std::unique_ptr<char[]> scratch_;
  std::uint64_t body_bytes_ = 0;
  std::uint64_t body_hash_ = kFnvOffset;
  std::string_view model_;
  std::string prompt_;  // the prompt text the prefix cache sees
  Usage usage_;
  bool include_usage_ = false;

  // per request
  bool close_ = false;
  bool http10_ = false;
  bool chunked_events_ = true;  // the stream being produced is chunked
  bool head_only_ = false;
  bool continue_ = false;
  // per response
  Phase phase_ = Phase::idle;
  bool track_ = false;
  bool peer_closed_ = false;
  bool write_failed_ = false;
  bool abort_close_ = false;
  bool cancel_recorded_ = false;
};

template <class Stream>
bool Session<Stream>::apply_headers(const http::request<http::buffer_body>& req, Plan& plan,
                            bool record_ids, std::string& err) {
  for (const auto& f : req) {
    std::string_view name = f.name_string();
    if (name.size() < 6) continue;
    char c0 = name[0] | 0x20;
    if (c0 == 'e') {
      if (beast::iequals(name, "expect") && beast::iequals(f.value(), "100-continue")) continue_ = true;
      continue;
    }
    if (c0 != 'x' || name[1] != '-') continue;
    std::string_view v = f.value();
    std::uint64_t n = 0;
    auto number = [&](std::uint64_t lo, std::uint64_t hi) {
      if (parse_uint(v, lo, hi, n)) return true;
      err = std::string(name) + ": expected an integer in " + std::to_string(lo) + ".." +
            std::to_string(hi) + " (got \"" + std::string(v) + "\")";
      return false;
    };
    if (beast::iequals(name, "x-request-id")) {
      if (record_ids) stats_.record_request_id(v);
    } else if (name.size() < 7 || !beast::iequals(name.substr(0, 7), "x-mock-")) {
      continue;
    } else if (beast::iequals(name, "x-mock-tokens")) {
      if (!number(0, kMaxTokens)) return false;
      plan.tokens = static_cast<std::uint32_t>(n);
    } else if (beast::iequals(name, "x-mock-token-delay-ms")) {
      if (!number(0, kMaxDelayMs)) return false;
      plan.token_delay_ms = static_cast<std::uint32_t>(n);
    } else if (beast::iequals(name, "x-mock-first-token-delay-ms")) {
      if (!number(0, kMaxDelayMs)) return false;
      plan.first_token_delay_ms = static_cast<std::uint32_t>(n);
    } else if (beast::iequals(name, "x-mock-fail-status")) {
      if (!number(0, 599)) return false;
      if (n != 0 && n < 200) {
        err = "X-Mock-Fail-Status: expected 0 or 200..599";
        return false;
      }
      plan.fail_status = static_cast<unsigned>(n);
    } else if (beast::iequals(name, "x-mock-close-after-tokens")) {
      if (!number(0, kMaxTokens)) return false;
      plan.close_after = static_cast<std::int64_t>(n);
    } else if (beast::iequals(name, "x-mock-hang") || beast::iequals(name, "x-mock-until-close")) {
        bool& flag = beast::iequals(name, "x-mock-hang") ? plan.hang : plan.until_close;
        if (v == "1" || beast::iequals(v, "true")) {
            flag = true;
        } else if (v == "0" || beast::iequals(v, "false")) {
            flag = false;
        } else {
            err = std::string(name) + ": expected 1 or 0";
            return false;
        }
    }
  }
  return true;
}

template <class Stream>
void Session<Stream>::build_event_prefix(bool chat, const char* object) {
  event_prefix_.clear();
  event_prefix_ += chat ? "{\"id\":\"chatcmpl-mock-" : "{\"id\":\"cmpl-mock-";
  append_uint(event_prefix_, ++t_response_counter);
  event_prefix_ += "\",\"object\":\"";
  event_prefix_ += object;
  event_prefix_ += "\",\"created\":";
  append_uint(event_prefix_, static_cast<std::uint64_t>(std::time(nullptr)));
  event_prefix_ += ",\"model\":\"";
  event_prefix_ += model_;
  event_prefix_ += "\",\"system_fingerprint\":\"";
  event_prefix_ += srv_.id_json();
  event_prefix_ += "\",\"choices\":[{\"index\":0,";
  event_prefix_ += chat ? "\"delta\":{\"content\":\"" : "\"text\":\"";
}

template <class Stream>
void Session<Stream>::append_event(std::uint32_t i, bool last, bool chat) {
  static constexpr std::string_view kChatMore = "\"},\"finish_reason\":null}]}";
  static constexpr std::string_view kChatLast = "\"},\"finish_reason\":\"stop\"}]}";
  static constexpr std::string_view kTextMore = "\",\"logprobs\":null,\"finish_reason\":null}]}";
  static constexpr std::string_view kTextLast = "\",\"logprobs\":null,\"finish_reason\":\"stop\"}]}";
  std::string_view suffix = chat ? (last ? kChatLast : kChatMore) : (last ? kTextLast : kTextMore);
  char num[16];
  auto r = std::to_chars(num, num + sizeof num, i);
  std::size_t numlen = static_cast<std::size_t>(r.ptr - num);
  // Every event says when it was written (CLOCK_MONOTONIC ns), so a client on
  // the same machine measures delivery lag exactly (tools/sse_load).
  char tns[40];
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  auto tr = std::to_chars(tns, tns + sizeof tns, static_cast<long long>(now));
  std::string_view tns_field(tns, static_cast<std::size_t>(tr.ptr - tns));
  suffix.remove_suffix(1);  // the closing brace goes after "t_ns"
  // data: <prefix>tok<i> <suffix>,"t_ns":N}\n\n
  std::size_t len = 6 + event_prefix_.size() + 3 + numlen + 1 + suffix.size() + 8 +
                    tns_field.size() + 1 + 2;
  const bool chunked = chunked_events_;
  if (chunked) {
    append_hex(out_, len);
    out_ += "\r\n";
  }
  out_ += "data: ";
  out_ += event_prefix_;
  out_ += "tok";
  out_.append(num, numlen);
  out_ += ' ';
  out_ += suffix;
  out_ += ",\"t_ns\":";
  out_ += tns_field;
  out_ += "}\n\n";
  if (chunked) out_ += "\r\n";
}

template <class Stream>
asio::awaitable<void> Session<Stream>::produce_stream(bool chat, const Plan& plan,
                                                     InFlight& inflight) {
  try {
      const Framing framing = http10_ || plan.until_close ? Framing::until_close : Framing::chunked;
      if (plan.until_close) close_ = true;  // the head says Connection: close
      chunked_events_ = framing == Framing::chunked;
      constexpr std::string_view kSseHeaders = "Cache-Control: no-cache\r\n";
      if (const auto first_us = first_delay_us(plan); first_us > 0) {
          bool slept = co_await sleep_us(first_us);
          if (!slept) co_return;
    }
    for (std::uint32_t i = 0; i < plan.tokens; ++i) {
      if (i > 0 && plan.token_delay_ms > 0) {
        bool slept = co_await sleep_ms(plan.token_delay_ms);
        if (!slept) co_return;
      }
      if (plan.close_after == static_cast<std::int64_t>(i)) {
        abort_close_ = true;
        co_return;
      }
      out_.clear();
      if (i == 0) head(200, "text/event-stream", framing, 0, kSseHeaders);
      append_event(i, i + 1 == plan.tokens, chat);
      bool written = co_await write_out();
      if (!written) co_return;
    }
    if (plan.close_after == static_cast<std::int64_t>(plan.tokens)) {
      abort_close_ = true;
      co_return;
    }
    out_.clear();
    if (plan.tokens == 0) head(200, "text/event-stream", framing, 0, kSseHeaders);
    if (include_usage_) append_usage_event(plan.tokens);
    out_ += framing == Framing::chunked ? std::string_view("e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
                                        : std::string_view("data: [DONE]\n\n");
    phase_ = Phase::finishing;
    inflight.release();
    bool written = co_await write_out();
    if (written) phase_ = Phase::done;
  } catch (const std::exception&) {
    write_failed_ = true;
  }
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::stream(bool chat, const Plan& plan, InFlight& inflight) {
  stats_.streams_started.fetch_add(1, std::memory_order_relaxed);
  build_event_prefix(chat, chat ? "chat.completion.chunk" : "text_completion");
  begin_response();
  bool slow = first_delay_us(plan) > 0 || (plan.token_delay_ms > 0 && plan.tokens > 1);
  if (slow) {
    co_await (produce_stream(chat, plan, inflight) || watch());
  } else {
    co_await produce_stream(chat, plan, inflight);
  }
  bool ok = phase_ == Phase::done;
  if (ok) stats_.streams_completed.fetch_add(1, std::memory_order_relaxed);
  if (!ok && !abort_close_ && !cancel_recorded_ && !peer_closed_) {
    // Ended without [DONE] for a reason other than a client close: treat as cancelled.
    note_peer_gone("stream aborted");
  }
  phase_ = Phase::idle;
  co_return ok && !peer_closed_ && !http10_;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::unary(bool chat, const Plan& plan, InFlight& inflight) {
  begin_response();
  if (const auto first_us = first_delay_us(plan); first_us > 0) {
    co_await (sleep_void(first_us) || watch());
    if (peer_closed_) {
      phase_ = Phase::idle;
      co_return false;
    }
  }
  if (plan.close_after == 0) {
    abort_close_ = true;
    phase_ = Phase::idle;
    co_return false;
  }
  std::string_view content = srv_.content_for(plan.tokens, content_scratch_);
  build_event_prefix(chat, chat ? "chat.completion" : "text_completion");
  auto& b = resp_body_;
  b.clear();
  b += event_prefix_;
  if (chat) {
    // The prefix ends with "delta":{"content":" for chunks; rewrite for a message.
    b.resize(b.size() - std::string_view("\"delta\":{\"content\":\"").size());
    b += "\"message\":{\"role\":\"assistant\",\"content\":\"";
    b += content;
    b += "\"},\"finish_reason\":\"stop\"}]";
  } else {
    b += content;
    b += "\",\"logprobs\":null,\"finish_reason\":\"stop\"}]";
  }
  b += ',';
  append_usage(b, plan.tokens);
  b += '}';
  std::uint64_t want = srv_.options().response_bytes;
  constexpr std::size_t kPadOverhead = 15;  // ,"padding":"" plus the closing }
  if (want > b.size() + kPadOverhead) {
    b.pop_back();
    b += ",\"padding\":\"";
    b.append(want - b.size() - 2, 'x');
    b += "\"}";
  }
  out_.clear();
  head(200, "application/json", Framing::length, b.size());
  if (plan.close_after > 0) {
    // Truncated answer: the head and half of the promised body, then close.
    abort_close_ = true;
    co_await write_out(std::string_view(b).substr(0, b.size() / 2));
    phase_ = Phase::idle;
    co_return false;
  }
  phase_ = Phase::finishing;
  inflight.release();
  bool ok = co_await write_out(b);
  phase_ = Phase::idle;
  co_return ok;
}

template <class Stream>
asio::awaitable<bool> Session<Stream>::completion(Parser& p, bool chat, const Plan& plan,
                                          InFlight& inflight) {
  stats_.completions.fetch_add(1, std::memory_order_relaxed);
  bool body_ok = co_await read_body(p, Sink::collect);
  if (!body_ok) co_return false;
  CompletionFields fields;
  if (!scan_completion_request(body_, fields)) {
    error(400, "request body is not valid JSON");
    inflight.release();
    co_return co_await write_out();
  }
  stats_.record_model(fields.model, fields.model_given);
  if (plan.hang) co_return co_await hang();
  if (plan.fail_status != 0) {
    error(plan.fail_status, "mock failure (status " + std::to_string(plan.fail_status) + ")");
    inflight.release();
    co_return co_await write_out();
  }
  if (!fields.model.empty()) {
    // vLLM's answer to a model it does not serve (--models only). An empty
    // or missing "model" means the served one, as in vLLM.
    std::string decoded;
    if (!json_unescape(fields.model, decoded) || !srv_.serves(decoded)) {
      scratch_json_ = "{\"error\":{\"message\":\"The model `";
      scratch_json_ += fields.model;
      scratch_json_ +=
          "` does not exist.\",\"type\":\"NotFoundError\",\"param\":\"model\",\"code\":404}}";
      simple(404, "application/json", scratch_json_);
      inflight.release();
      co_return co_await write_out();
    }
  }
  model_ = fields.model.empty() || fields.model.size() > 256 ? srv_.default_model() : fields.model;
  include_usage_ = fields.include_usage;
  usage_ = Usage{(body_bytes_ + 3) / 4, 0, false};
  const Options& o = srv_.options();
  const bool simulate = o.prefix_cache_blocks > 0 || o.prefill_us_per_kib > 0;
  if (simulate) prompt_text(body_, chat, prompt_);
  // Running from here (the start of prefill) until the answer is written or
  // the client left; with --max-batch, maybe after a wait in the queue.
  BatchPlace place(srv_.batch());
  begin_response();
  const bool admitted = co_await take_turn(place.ticket);
  if (!admitted) {
    phase_ = Phase::idle;
    co_return false;
  }
  Plan run = plan;
  if (simulate) {
    PrefixCache& cache = srv_.prefix_cache();
    const std::uint64_t bytes = prompt_.size();
    const std::uint64_t cached = cache.lookup_and_insert(prompt_);
    if (cache.enabled()) {
      usage_ = Usage{(bytes + 3) / 4, cached / 4, true};
      stats_.prefix_cache_query_bytes.fetch_add(bytes, std::memory_order_relaxed);
      stats_.prefix_cache_hit_bytes.fetch_add(cached, std::memory_order_relaxed);
      stats_.prefix_cache_query_tokens.fetch_add(usage_.prompt_tokens, std::memory_order_relaxed);
      stats_.prefix_cache_hit_tokens.fetch_add(usage_.cached_tokens, std::memory_order_relaxed);
      const std::uint64_t block = cache.block_bytes();
      srv_.batch().set_prompt_blocks(place.ticket, (bytes + block - 1) / block);
    }
    run.prefill_us = std::min((bytes - cached) * o.prefill_us_per_kib / 1024, kMaxDelayMs * 1000);
  }
  if (fields.stream) co_return co_await stream(chat, run, inflight);
  co_return co_await unary(chat, run, inflight);
}

template <class Stream>
void Session<Stream>::build_echo(const Parser& p) {
  const auto& req = p.get();
  auto& b = resp_body_;
  b.clear();
  b += "{\"method\":\"";
  append_json_escaped(b, req.method_string());
  b += "\",\"target\":\"";
  append_json_escaped(b, req.target());
  b += "\",\"version\":\"";
  b += req.version() == 10 ? "1.0" : "1.1";
  b += "\",\"headers\":[";
  bool first = true;
  for (const auto& f : req) {
    if (!first) b += ',';
    first = false;
    b += "[\"";
    append_json_escaped(b, f.name_string());
    b += "\",\"";
    append_json_escaped(b, f.value());
    b += "\"]";
  }
  b += "],\"body_bytes\":";
  append_uint(b, body_bytes_);
  b += ",\"body_fnv1a64\":\"";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(body_hash_));
  b += hex;
  b += '"';
  append_tls_echo(b);
  b += '}';
}

template <class Stream>
asio::awaitable<void> Session<Stream>::run() {
  for (bool first = true;; first = false) {
    // --idle-close-ms: like a server with a short keep-alive timeout, close a
    // connection that stays idle between requests, without a word.
    if (const auto idle = srv_.options().idle_close_ms; idle > 0 && !first && buf_.size() == 0) {
      const bool readable = co_await idle_wait(idle);
      if (!readable) break;
    }
    Parser p;
    p.header_limit(kHeaderLimit);
    p.body_limit(kBodyLimit);
    close_ = false;
    continue_ = false;
    {
      auto [ec, n] = co_await http::async_read_header(sock_, buf_, p, tok);
      (void)n;
      if (ec) {
        if (is_http_error(ec) && ec != http::error::end_of_stream &&
            ec != http::error::partial_message) {
          close_ = true;
          http10_ = false;
          head_only_ = false;
          unsigned status = ec == http::error::header_limit ? 431 : 400;
          error(status, "bad request: " + ec.message());
          co_await write_out();
        }
        break;
      }
    }
    auto& req = p.get();
    http10_ = req.version() < 11;
    close_ = !p.keep_alive();
    head_only_ = req.method() == http::verb::head;
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view allow;
    Route route = route_of(req.method(), path, allow);
    bool keep = true;

    if (route == Route::stats || route == Route::reset || route == Route::load ||
        route == Route::metrics) {
      // Not counted in requests: inspection and control. Only /metrics hangs.
      std::string err;
      Plan control{};
      control.hang = srv_.options().hang;
      apply_headers(req, control, false, err);
      bool body_ok = co_await read_body(p, route == Route::load ? Sink::collect : Sink::hash);
      if (!body_ok) break;
      if (route == Route::metrics && control.hang) {
        keep = co_await hang();
        break;
      }
      if (route == Route::metrics) {
        std::string text;
        const unsigned status = srv_.metrics(text);
        simple(status, status == 200 ? kMetricsContentType : "text/plain; charset=utf-8", text);
      } else if (route == Route::load) {
        SimulatedLoad load;
        if (parse_simulated_load(body_, load, err)) {
          srv_.set_load(load);
          out_.clear();
          head(204, {}, Framing::until_close, 0);
        } else {
          error(400, "/mock/load: " + err);
        }
      } else if (route == Route::reset) {
        srv_.reset();
        simple(200, "application/json", "{\"status\":\"reset\"}");
      } else {
        std::string json = stats_.to_json(srv_.id());
        simple(200, "application/json", json);
      }
      keep = co_await write_out();
    } else {
      const Options& o = srv_.options();
      Plan plan{o.tokens,      o.token_delay_ms,     o.first_token_delay_ms,
                o.fail_status, o.close_after_tokens, o.hang,
                false,         0};
      InFlight inflight(stats_);
      std::string err;
      if (!apply_headers(req, plan, true, err)) {
        close_ = true;
        error(400, err);
        inflight.release();
        co_await write_out();
        break;
      }
      switch (route) {
        case Route::chat:
        case Route::text:
          keep = co_await completion(p, route == Route::chat, plan, inflight);
          break;
        case Route::echo: {
          bool body_ok = co_await read_body(p, Sink::hash);
          if (!body_ok) {
            keep = false;
            break;
          }
          if (plan.hang) {
            keep = co_await hang();
            break;
          }
          build_echo(p);
          out_.clear();
          head(200, "application/json", Framing::length, resp_body_.size());
          inflight.release();
          keep = co_await write_out(head_only_ ? std::string_view() : std::string_view(resp_body_));
          break;
        }
        default: {
          bool body_ok = co_await read_body(p, Sink::hash);
          if (!body_ok) {
            keep = false;
            break;
          }
          if (plan.hang) {
            keep = co_await hang();
            break;
          }
          inflight.release();
          if (route == Route::health || route == Route::models) {
            bool health = route == Route::health;
            if (!close_ && !http10_ && !head_only_) {
              // Precomputed whole response: no formatting at all.
              out_.clear();
              keep = co_await write_out(health ? srv_.health_response() : srv_.models_response());
              break;
            }
            simple(200, "application/json", health ? srv_.health_body() : srv_.models_body());
          } else if (route == Route::bad_method) {
            std::string extra = "Allow: " + std::string(allow) + "\r\n";
            error(405, "method " + std::string(req.method_string()) + " not allowed on " +
                           std::string(path), extra);
          } else {
            error(404, "no such endpoint: " + std::string(req.method_string()) + " " +
                           std::string(path));
          }
          keep = co_await write_out();
        }
      }
    }
    if (!keep || close_ || abort_close_ || peer_closed_) break;
    if (body_.capacity() > kKeepCapacity) std::string().swap(body_);
    if (resp_body_.capacity() > kKeepCapacity) std::string().swap(resp_body_);
    if (buf_.size() == 0 && buf_.capacity() > kKeepCapacity) buf_.shrink_to_fit();
  }
  co_await close_stream();
}

}  // namespace

void build_content(std::string& out, std::uint32_t tokens) {
  out.clear();
  out.reserve(static_cast<std::size_t>(tokens) * 8);
  for (std::uint32_t i = 0; i < tokens; ++i) {
    out += "tok";
    append_uint(out, i);
    out += ' ';
  }
}

Server::Server(const Options& opt, std::string id)
    : opt_(opt),
      id_(std::move(id)),
      cache_(opt.prefix_cache_blocks, opt.cache_block_bytes),
      batch_(opt.max_batch, stats_) {
  append_json_escaped(id_json_, id_);
  build_content(default_content_, opt_.tokens);
  health_body_ = "{\"status\":\"ok\"}";
  // OpenAI's list shape, one entry per --models name (checked to need no
  // escaping), or the one default model.
  models_body_ = "{\"object\":\"list\",\"data\":[";
  for (std::size_t i = 0; i < std::max<std::size_t>(1, opt_.models.size()); ++i) {
    if (i > 0) models_body_ += ',';
    models_body_ += "{\"id\":\"";
    models_body_ += opt_.models.empty() ? kDefaultModel : std::string_view(opt_.models[i]);
    models_body_ += "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"deepseek-mock\","
                    "\"system_fingerprint\":\"" + id_json_ + "\"}";
  }
  models_body_ += "]}";
  auto whole = [&](const std::string& body) {
    std::string r = "HTTP/1.1 200 OK\r\nServer: deepseek-mock\r\nX-Mock-Server: " + id_ +
                    "\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
    return r;
  };
  health_response_ = whole(health_body_);
  models_response_ = whole(models_body_);
}

bool Server::serves(std::string_view model) const {
  if (opt_.models.empty()) return true;
  for (const auto& m : opt_.models)
    if (m == model) return true;
  return false;
}

std::string_view Server::default_model() const {
  return opt_.models.empty() ? kDefaultModel : std::string_view(opt_.models.front());
}

void Server::set_load(const SimulatedLoad& load) {
  std::lock_guard lock(load_mu_);
  load_ = load;
}

unsigned Server::metrics(std::string& out) {
  SimulatedLoad load;
  {
    std::lock_guard lock(load_mu_);
    load = load_;
  }
  if (load.metrics_status != 200) {
    out = "mock metrics failure (status " + std::to_string(load.metrics_status) + ")\n";
    return load.metrics_status;
  }
  MetricsValues v;
  v.running = batch_.running_count() + load.running;
  v.waiting = batch_.waiting_count() + load.waiting;
  if (load.kv_usage) {
    v.kv_usage = *load.kv_usage;
  } else if (cache_.enabled()) {
    v.kv_usage = std::min(1.0, static_cast<double>(batch_.prompt_blocks()) /
                                   static_cast<double>(opt_.prefix_cache_blocks));
  }
  v.prefix_cache_queries = stats_.prefix_cache_query_tokens.load(std::memory_order_relaxed);
  v.prefix_cache_hits = stats_.prefix_cache_hit_tokens.load(std::memory_order_relaxed);
  render_metrics(out, default_model(), v);
  return 200;
}

void Server::reset() {
  stats_.reset(batch_.waiting_count());
  cache_.clear();
  set_load(SimulatedLoad{});
}

std::string_view Server::content_for(std::uint32_t tokens, std::string& scratch) const {
  if (tokens == opt_.tokens) return default_content_;
  build_content(scratch, tokens);
  return scratch;
}

void Server::log(std::string_view msg) const {
  if (opt_.quiet) return;
  std::fprintf(stderr, "mock[%s]: %.*s\n", id_.c_str(), static_cast<int>(msg.size()), msg.data());
}

std::unique_ptr<asio::ssl::context> make_tls_context(const Options& o, std::string& err) {
  if (o.tls_cert.empty()) return nullptr;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert, ec);
  if (ec) {
    err = "--tls-cert " + o.tls_cert + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
  if (ec) {
    // OpenSSL checks the key against the certificate while loading it.
    bool mismatch = ec.message().find("mismatch") != std::string::npos;
    err = "--tls-key " + o.tls_key + ": " +
          (mismatch ? "does not match the certificate in " + o.tls_cert : ec.message());
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    err = "--tls-key " + o.tls_key + ": does not match the certificate in " + o.tls_cert;
    return nullptr;
  }
  // Needed for session resumption once client certificates are verified.
  static constexpr unsigned char kSessionContext[] = "deepseek-mock";
  SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext,
                                 sizeof kSessionContext - 1);
  if (!o.tls_client_ca.empty()) {
    ctx->load_verify_file(o.tls_client_ca, ec);
    if (ec) {
      err = "--tls-client-ca " + o.tls_client_ca + ": " + ec.message();
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.tls_client_ca.c_str()))
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

Server::Server(const Options& opt, std::string id, asio::ssl::context* tls)
    : Server(opt, std::move(id)) {
  tls_ = tls;
}

asio::awaitable<void> Server::serve(tcp::socket sock) {
  stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  stats_.connections_open.fetch_add(1, std::memory_order_relaxed);
  struct OpenGuard {
    Stats& s;
    ~OpenGuard() { s.connections_open.fetch_sub(1, std::memory_order_relaxed); }
  } guard{stats_};
  boost::system::error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  if (!tls_) {
    Session<tcp::socket> session(*this, std::move(sock));
    co_await session.run();
    co_return;
  }
  using TlsStream = asio::ssl::stream<tcp::socket>;
  TlsStream stream(std::move(sock), *tls_);
  asio::steady_timer deadline(stream.get_executor(), kTlsHandshakeTimeout);
  auto result = co_await (stream.async_handshake(asio::ssl::stream_base::server, tok) ||
                          deadline.async_wait(tok));
  boost::system::error_code ec = result.index() == 0 ? std::get<0>(std::get<0>(result))
                                                     : asio::error::timed_out;
  if (ec) {
    stats_.tls_handshake_errors.fetch_add(1, std::memory_order_relaxed);
    if (!opt_.quiet) log("tls handshake failed: " + ec.message());
    stream.lowest_layer().close(ec);
    co_return;
  }
  stats_.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  if (SSL_session_reused(stream.native_handle()))
    stats_.tls_sessions_reused.fetch_add(1, std::memory_order_relaxed);
  Session<TlsStream> session(*this, std::move(stream));
  co_await session.run();
}

}  // namespace mock
