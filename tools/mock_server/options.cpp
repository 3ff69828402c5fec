#include "options.hpp"

#include <charconv>

namespace mock {

namespace {

constexpr std::string_view kUsage =
    "usage: deepseek-mock-server [--listen HOST:PORT] [--id NAME] [--threads N]\n"
    "         [--tokens N] [--token-delay-ms N] [--first-token-delay-ms N]\n"
    "         [--fail-status CODE] [--close-after-tokens N] [--hang]\n"
    "         [--response-bytes N] [--idle-close-ms N] [--models NAME[,NAME...]] [--quiet]\n"
    "         [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
    "         [--prefix-cache-blocks N] [--cache-block-bytes N] [--prefill-us-per-kib N]\n"
    "         [--max-batch N]\n"
    "  --listen HOST:PORT        address to bind (default 127.0.0.1:0); IPv6 as [::1]:0\n"
    "  --id NAME                 server id in X-Mock-Server and in JSON (default: the port)\n"
    "  --threads N               event-loop threads (default 1)\n"
    "  --tokens N                tokens per completion (default 20)\n"
    "  --token-delay-ms N        delay between two streamed tokens (default 0)\n"
    "  --first-token-delay-ms N  delay before the first token / the answer (default 0)\n"
    "  --fail-status CODE        answer every completion with CODE and an OpenAI error\n"
    "  --close-after-tokens N    close the connection abruptly after N SSE events\n"
    "  --idle-close-ms N         close a keep-alive connection idle for N ms (default 0: never)\n"
    "  --hang                    read requests but never answer them\n"
    "  --response-bytes N        pad non-streaming completion JSON to about N bytes\n"
    "  --models NAME[,NAME...]   models served and listed at /v1/models; others get 404\n"
    "                            (default: list deepseek-mock, accept any model)\n"
    "  --quiet                   no log lines on stderr\n"
    "  --tls-cert FILE           serve HTTPS with this PEM certificate (chain); needs --tls-key\n"
    "  --tls-key FILE            PEM private key of --tls-cert\n"
    "  --tls-client-ca FILE      require a client certificate signed by a CA in FILE\n"
    "  --prefix-cache-blocks N   simulate a prefix cache of N blocks, LRU (default 0: none)\n"
    "  --cache-block-bytes N     its block size, in bytes of prompt text (default 64, 1..65536)\n"
    "  --prefill-us-per-kib N    prefill time per KiB of prompt not in the cache (default 0)\n"
    "  --max-batch N             at most N completions running, the others wait in a FIFO\n"
    "                            (default 0: no limit)\n"
    "Per-request overrides: X-Mock-Tokens, X-Mock-Token-Delay-Ms,\n"
    "X-Mock-First-Token-Delay-Ms, X-Mock-Fail-Status, X-Mock-Close-After-Tokens, X-Mock-Hang: 1\n";

bool parse_listen(std::string_view s, Options& o, std::string& err) {
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      err = "--listen: expected [IPV6]:PORT (got \"" + std::string(s) + "\")";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon) {
      err = "--listen: expected HOST:PORT or [IPV6]:PORT (got \"" + std::string(s) + "\")";
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  std::uint64_t p = 0;
  if (host.empty() || !parse_uint(port, 0, 65535, p)) {
    err = "--listen: bad host or port (got \"" + std::string(s) + "\")";
    return false;
  }
  o.listen_host = host == "localhost" ? "127.0.0.1" : std::string(host);
  o.listen_port = static_cast<std::uint16_t>(p);
  return true;
}

// NAME[,NAME...]: visible ASCII names (a '"' or '\\' would need escaping in
// the JSON the server writes), none empty, none twice.
bool parse_models(std::string_view s, std::vector<std::string>& out, std::string& err) {
  out.clear();
  for (;;) {
    const auto comma = s.find(',');
    const std::string_view name = s.substr(0, comma);
    bool visible = !name.empty();
    for (char c : name) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u > 0x7e || c == '"' || c == '\\') visible = false;
    }
    if (!visible) {
      err = "--models: expected NAME[,NAME...] of visible ASCII characters other than '\"' "
            "and '\\' (got \"" + std::string(name) + "\")";
      return false;
    }
    for (const auto& seen : out) {
      if (seen == name) {
        err = "--models: \"" + std::string(name) + "\" given twice";
        return false;
      }
    }
    out.emplace_back(name);
    if (comma == std::string_view::npos) return true;
    s.remove_prefix(comma + 1);
  }
}

}  // namespace

bool parse_uint(std::string_view s, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  if (v < lo || v > hi) return false;
  out = v;
  return true;
}

ParseResult parse_options(int argc, char** argv) {
  ParseResult r;
  Options o;
  auto bad = [&](std::string msg) {
    r.options.reset();
    r.message = std::move(msg) + "\n" + std::string(kUsage);
    r.exit_code = 2;
    return r;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_inline = false;
    if (arg.starts_with("--")) {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto flag = [&](std::string_view name) { return arg == name; };
    // Fetch the value of a flag that takes one.
    auto take = [&](std::string_view& v) -> bool {
      if (has_inline) {
        v = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    auto number = [&](std::uint64_t lo, std::uint64_t hi, std::uint64_t& out, std::string& err) {
      std::string_view v;
      if (!take(v)) {
        err = std::string(arg) + ": missing value";
        return false;
      }
      if (!parse_uint(v, lo, hi, out)) {
        err = std::string(arg) + ": expected an integer in " + std::to_string(lo) + ".." +
              std::to_string(hi) + " (got \"" + std::string(v) + "\")";
        return false;
      }
      return true;
    };
    std::string err;
    std::uint64_t n = 0;
    if (flag("--help") || flag("-h")) {
      r.options.reset();
      r.message = std::string(kUsage);
      r.exit_code = 0;
      return r;
    } else if (flag("--listen")) {
      std::string_view v;
      if (!take(v)) return bad("--listen: missing value");
      if (!parse_listen(v, o, err)) return bad(err);
    } else if (flag("--id")) {
      std::string_view v;
      if (!take(v) || v.empty()) return bad("--id: missing value");
      for (char c : v)
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
          return bad("--id: only visible ASCII characters are allowed");
      o.id = std::string(v);
    } else if (flag("--threads")) {
      if (!number(1, 256, n, err)) return bad(err);
      o.threads = static_cast<unsigned>(n);
    } else if (flag("--tokens")) {
      if (!number(0, kMaxTokens, n, err)) return bad(err);
      o.tokens = static_cast<std::uint32_t>(n);
    } else if (flag("--token-delay-ms")) {
      if (!number(0, kMaxDelayMs, n, err)) return bad(err);
      o.token_delay_ms = static_cast<std::uint32_t>(n);
    } else if (flag("--first-token-delay-ms")) {
      if (!number(0, kMaxDelayMs, n, err)) return bad(err);
      o.first_token_delay_ms = static_cast<std::uint32_t>(n);
    } else if (flag("--fail-status")) {
      if (!number(200, 599, n, err)) return bad(err);
      o.fail_status = static_cast<unsigned>(n);
    } else if (flag("--close-after-tokens")) {
      if (!number(0, kMaxTokens, n, err)) return bad(err);
      o.close_after_tokens = static_cast<std::int64_t>(n);
    } else if (flag("--idle-close-ms")) {
      if (!number(1, kMaxDelayMs, n, err)) return bad(err);
      o.idle_close_ms = static_cast<std::uint32_t>(n);
    } else if (flag("--response-bytes")) {
      if (!number(0, kMaxResponseBytes, n, err)) return bad(err);
      o.response_bytes = n;
    } else if (flag("--prefix-cache-blocks")) {
      if (!number(0, kMaxCacheBlocks, n, err)) return bad(err);
      o.prefix_cache_blocks = n;
    } else if (flag("--cache-block-bytes")) {
      if (!number(1, kMaxCacheBlockBytes, n, err)) return bad(err);
      o.cache_block_bytes = static_cast<std::uint32_t>(n);
    } else if (flag("--prefill-us-per-kib")) {
      if (!number(0, kMaxPrefillUsPerKib, n, err)) return bad(err);
      o.prefill_us_per_kib = n;
    } else if (flag("--max-batch")) {
      if (!number(0, kMaxBatch, n, err)) return bad(err);
      o.max_batch = n;
    } else if (flag("--models")) {
      std::string_view v;
      if (!take(v) || v.empty()) return bad("--models: missing value");
      if (!parse_models(v, o.models, err)) return bad(err);
    } else if (flag("--tls-cert") || flag("--tls-key") || flag("--tls-client-ca")) {
      std::string_view v;
      if (!take(v) || v.empty()) return bad(std::string(arg) + ": missing value");
      (flag("--tls-cert") ? o.tls_cert : flag("--tls-key") ? o.tls_key : o.tls_client_ca) =
          std::string(v);
    } else if (flag("--hang") && !has_inline) {
      o.hang = true;
    } else if (flag("--quiet") && !has_inline) {
      o.quiet = true;
    } else {
      return bad("unknown argument \"" + std::string(argv[i]) + "\"");
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty())
    return bad("--tls-cert and --tls-key go together");
  if (!o.tls_client_ca.empty() && o.tls_cert.empty())
    return bad("--tls-client-ca needs --tls-cert and --tls-key");
  r.options = std::move(o);
  return r;
}

}  // namespace mock
