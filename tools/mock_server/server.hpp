// The mock inference server: per-connection HTTP/1.1 sessions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "batch.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "prefix_cache.hpp"
#include "stats.hpp"

namespace mock {

class Server {
 public:
  Server(const Options& opt, std::string id);
  // HTTPS: every connection is a TLS server stream on `tls` (outlives the server).
  Server(const Options& opt, std::string id, boost::asio::ssl::context* tls);

  // Serve one accepted connection until it closes.
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket sock);

  const Options& options() const { return opt_; }
  const std::string& id() const { return id_; }
  Stats& stats() { return stats_; }

  void log(std::string_view msg) const;

  // "tok0 tok1 ... " for the default token count, or built into scratch.
  std::string_view content_for(std::uint32_t tokens, std::string& scratch) const;

  const std::string& health_response() const { return health_response_; }
  const std::string& models_response() const { return models_response_; }
  const std::string& health_body() const { return health_body_; }
  const std::string& models_body() const { return models_body_; }
  const std::string& id_json() const { return id_json_; }

  // --models: whether a completion may name `model` (decoded); always true
  // without --models. The name answered for a request that names none.
  bool serves(std::string_view model) const;
  std::string_view default_model() const;

  // The simulated inference server: its prefix cache, its batch, and the
  // load POST /mock/load adds to what GET /metrics shows.
  PrefixCache& prefix_cache() { return cache_; }
  Batch& batch() { return batch_; }
  void set_load(const SimulatedLoad& load);
  // GET /metrics: its status, and its body in `out` (a short text when the
  // simulated load makes it fail).
  unsigned metrics(std::string& out);
  // POST /mock/reset: the counters, the prefix cache and the simulated load.
  void reset();

 private:
  Options opt_;
  boost::asio::ssl::context* tls_ = nullptr;
  std::string id_;
  std::string id_json_;  // id, JSON-escaped
  Stats stats_;
  PrefixCache cache_;
  Batch batch_;
  std::mutex load_mu_;
  SimulatedLoad load_;
  std::string default_content_;
  std::string health_body_;
  std::string models_body_;
  std::string health_response_;  // whole HTTP/1.1 keep-alive response
  std::string models_response_;
};

void build_content(std::string& out, std::uint32_t tokens);

// The server context for --tls-cert/--tls-key (and --tls-client-ca), or
// nullptr: plain HTTP when no certificate is given, an error in `err` when a
// file cannot be used.
std::unique_ptr<boost::asio::ssl::context> make_tls_context(const Options& opt, std::string& err);

}  // namespace mock
