#pragma once
// TLS for the integration harness: a client over OpenSSL in-process (so tests
// can time every SSL_read of a streamed response, and look at the handshake:
// version, ALPN, the server certificate's serial and subject, session reuse),
// and a runner for the `openssl s_client` and `curl` command lines.
//
// Like Conn, everything is bounded in time; the socket is non-blocking and
// every wait goes through poll().

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;

namespace dsgw::it {

// A saved TLS session, for resumption (owns one SSL_SESSION reference).
using TlsSession = std::shared_ptr<ssl_session_st>;

struct TlsOptions {
    std::string ca_file;                    // trust anchors; empty: do not verify
    bool verify = true;                     // verify the chain (needs ca_file)
    std::string server_name = "localhost";  // SNI, and the name checked; "" = none
    bool check_name = true;           // check server_name (or check_ip) against the certificate
    std::string check_ip;             // check this IP instead of a name
    std::string cert_file, key_file;  // client certificate
    int min_version = 0;              // TLS1_2_VERSION etc.; 0 = library default
    int max_version = 0;
    std::vector<std::string> alpn;  // offered protocols, e.g. {"http/1.1"}
    std::string cipher_list;        // TLS <= 1.2 ciphers (e.g. "DEFAULT@SECLEVEL=0")
    int security_level = -1;        // SSL_CTX_set_security_level; -1 = default
    TlsSession session;             // offer this session for resumption
};

struct TlsInfo {
    std::string version;  // "TLSv1.3"
    std::string cipher;
    std::string alpn;          // selected protocol, "" if none
    std::string peer_subject;  // server certificate, RFC 2253 ("CN=localhost")
    std::string peer_issuer;
    std::string peer_serial;  // upper-case hex, like `openssl x509 -serial`
    bool session_reused = false;
    long verify_result = 0;  // X509_V_OK = 0
};

class TlsConn {
public:
    TlsConn() = default;
    ~TlsConn();
    TlsConn(const TlsConn&) = delete;
    TlsConn& operator=(const TlsConn&) = delete;

    // TCP connect to host:port and TLS handshake. On failure error() tells
    // why (the OpenSSL error queue, or the alert the server sent).
    bool connect(std::uint16_t port, const TlsOptions& opt, const std::string& host = "127.0.0.1",
                 milliseconds timeout = 5s);
    bool is_open() const { return ssl_ != nullptr; }
    const TlsInfo& info() const { return info_; }
    const std::string& error() const { return error_; }

    bool send_all(std::string_view data);
    // One SSL_read with a deadline (application data only): >0 bytes appended
    // to `out`, 0 end of stream (close_notify or TCP EOF), -1 error (error()),
    // -2 timeout.
    long recv_some(std::string& out, milliseconds timeout, std::size_t max = 65536);
    // For the shared reading loops (harness_read.hpp).
    std::string& pending_bytes() { return buf_; }
    std::string recv_error() const { return error_; }
    bool recv_was_reset() const { return error_.find("reset") != std::string::npos; }
    // True when the last 0 from recv_some came with a close_notify (a clean
    // TLS close), false for a bare TCP EOF.
    bool saw_close_notify() const { return close_notify_; }

    std::optional<Response> read_response(milliseconds timeout = 10s, bool head_request = false,
                                          std::string* error = nullptr);
    StreamResult read_stream(Clock::time_point sent_at, milliseconds timeout = 30s);
    bool read_into(StreamReader& reader, milliseconds timeout,
                   std::size_t until_events = static_cast<std::size_t>(-1));
    Conn::CloseResult wait_close(milliseconds timeout);

    // TLS 1.3: asks for a key update (sent with the next write), with the
    // peer asked to update its own keys too. key_updates_received() counts
    // the KeyUpdate messages the peer has sent so far.
    bool request_key_update();
    int key_updates_received() const { return key_updates_received_; }

    // The session to resume later. For TLS 1.3 the ticket comes after the
    // handshake: call this after a response has been read.
    TlsSession session() const;

    // Sends close_notify (best effort) and closes.
    void close();
    // Closes the TCP connection with a reset, no close_notify.
    void close_with_reset();

private:
    bool wait_io(int want, Clock::time_point deadline);
    void fill_info();
    std::string ssl_error(int ret, const char* what);

    Conn tcp_;
    ssl_ctx_st* ctx_ = nullptr;
    ssl_st* ssl_ = nullptr;
    TlsInfo info_;
    std::string error_;
    std::string buf_;
    bool close_notify_ = false;
    int key_updates_received_ = 0;
};

// Connect, handshake, send, read one response, close.
std::optional<Response> tls_request_once(std::uint16_t port, const TlsOptions& opt,
                                         const std::string& raw, std::string* error = nullptr,
                                         TlsInfo* info = nullptr, milliseconds timeout = 10s);

// `openssl s_client -connect 127.0.0.1:PORT ARGS...` with `input` on its stdin
// (through a file; s_client quits at the end of its input unless -ign_eof).
RunResult s_client(std::uint16_t port, const std::vector<std::string>& args,
                   const std::string& input = "", milliseconds timeout = 20s);
// Joins stdout and stderr of a command.
std::string all_output(const RunResult& r);

// `curl ARGS...` (curl -sS is implied).
RunResult curl(const std::vector<std::string>& args, milliseconds timeout = 20s);

}  // namespace dsgw::it
