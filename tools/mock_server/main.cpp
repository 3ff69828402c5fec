// deepseek-mock-server: a fast OpenAI-compatible mock inference server for the
// gateway's integration tests, demo and benchmarks. See README.md.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "options.hpp"
#include "server.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, mock::Server& server,
                                  std::vector<std::unique_ptr<asio::io_context>>& contexts) {
  constexpr auto tok = asio::as_tuple(asio::use_awaitable);
  std::size_t next = 0;
  for (;;) {
    auto& ctx = *contexts[next];
    next = (next + 1) % contexts.size();
    auto [ec, sock] = co_await acceptor.async_accept(ctx.get_executor(), tok);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      server.log("accept failed: " + ec.message());
      // Out of descriptors and the like: back off a little instead of spinning.
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(10));
      co_await t.async_wait(tok);
      continue;
    }
    auto ex = sock.get_executor();
    asio::co_spawn(ex, server.serve(std::move(sock)), [&server](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        server.log(std::string("connection failed: ") + x.what());
      }
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = mock::parse_options(argc, argv);
  if (!parsed.options) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const mock::Options& opt = *parsed.options;
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (unsigned i = 0; i < opt.threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  asio::io_context& main_ctx = *contexts[0];

  boost::system::error_code ec;
  auto address = asio::ip::make_address(opt.listen_host, ec);
  if (ec) {
    std::fprintf(stderr, "deepseek-mock-server: --listen: bad address \"%s\": %s\n",
                 opt.listen_host.c_str(), ec.message().c_str());
    return 2;
  }
  tcp::endpoint endpoint(address, opt.listen_port);
  tcp::acceptor acceptor(main_ctx);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "deepseek-mock-server: cannot listen on %s: %s\n",
                 endpoint.address().is_v6()
                     ? ("[" + opt.listen_host + "]:" + std::to_string(opt.listen_port)).c_str()
                     : (opt.listen_host + ":" + std::to_string(opt.listen_port)).c_str(),
                 ec.message().c_str());
    return 3;
  }
  std::string tls_error;
  auto tls = mock::make_tls_context(opt, tls_error);
  if (!tls_error.empty()) {
    std::fprintf(stderr, "deepseek-mock-server: %s\n", tls_error.c_str());
    return 3;
  }
  auto bound = acceptor.local_endpoint();
  std::string id = opt.id.empty() ? std::to_string(bound.port()) : opt.id;
  mock::Server server(opt, id, tls.get());

  std::string host = bound.address().to_string();
  if (bound.address().is_v6()) host = "[" + host + "]";
  std::printf("listening on %s:%u\n", host.c_str(), static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : contexts) guards.push_back(asio::make_work_guard(*c));

  asio::signal_set signals(main_ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int) {
    if (e) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& c : contexts) c->stop();
  });

  asio::co_spawn(main_ctx, accept_loop(acceptor, server, contexts), asio::detached);

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < opt.threads; ++i) {
    threads.emplace_back([&contexts, i] { contexts[i]->run(); });
  }
  main_ctx.run();
  for (auto& t : threads) t.join();
  std::fflush(stdout);
  // Skip tearing down the connections still open: exit at once, status 0.
  std::_Exit(0);
}
