#include "upstream/http_get.hpp"

#include "deepseek_gateway/tls/context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <memory>

namespace dsgw::upstream {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// The request and its answer on an open stream. Returns "" with the body on
// a 200, else why not.
template <class Stream>
asio::awaitable<std::string> exchange(Stream& s, const UpstreamServer& server, const HttpGet& get,
                                      std::string& body) {
    http::request<http::empty_body> req{http::verb::get, get.target, 11};
    req.set(http::field::host, server.authority());
    req.set(http::field::user_agent, get.user_agent);
    req.set(http::field::accept, get.accept);
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(s, req, nothrow);
    if (wec) co_return "write failed: " + wec.message();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(get.max_body);
    auto [rec, rn] = co_await http::async_read(s, buffer, parser, nothrow);
    if (rec) co_return "no answer: " + rec.message();
    if (parser.get().result_int() != 200)
        co_return "status " + std::to_string(parser.get().result_int());
    body = std::move(parser.get().body());
    co_return std::string();
}

}  // namespace

std::string host_of(const std::string& host_port) {
    auto colon = host_port.rfind(':');
    std::string h = host_port.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    return h;
}

asio::awaitable<std::string> http_get(const Upstream& up, const UpstreamServer& server,
                                      const HttpGet& get, std::string& body) {
    auto ex = co_await asio::this_coro::executor;
    // Shared with the deadline's handler: a deadline that expires as the
    // answer completes runs its handler after this frame is gone, and
    // cancel() cannot stop it any more.
    struct Attempt {
        explicit Attempt(const asio::any_io_executor& ex) : sock(ex) {}
        tcp::socket sock;
        bool expired = false;
    };
    auto attempt = std::make_shared<Attempt>(ex);
    auto& sock = attempt->sock;
    asio::steady_timer deadline(ex);
    deadline.expires_after(get.timeout);
    deadline.async_wait([attempt](error_code ec) {
        if (ec) return;
        attempt->expired = true;
        error_code ignored;
        attempt->sock.close(ignored);
    });
    std::string result;
    auto [cec] = co_await sock.async_connect(server.endpoint(), nothrow);
    if (cec) {
        result = "connect failed: " + cec.message();
    } else if (auto* tls = up.tls()) {
        asio::ssl::stream<tcp::socket&> stream(sock, tls->context());
        tls->prepare(stream.native_handle(), host_of(server.authority()));
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, nothrow);
        if (hec)
            result = "TLS handshake failed: " + hec.message();
        else
            result = co_await exchange(stream, server, get, body);
    } else {
        result = co_await exchange(sock, server, get, body);
    }
    deadline.cancel();
    if (attempt->expired) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(get.timeout);
        result = "no answer within " + std::to_string(ms.count()) + " ms";
    }
    co_return result;
}

}  // namespace dsgw::upstream
