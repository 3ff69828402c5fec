// The harness's TLS client and the openssl/curl command-line runners (see
// harness_tls.hpp).

#include "harness_tls.hpp"
#include "harness_read.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace dsgw::it {

namespace {

std::string drain_errors() {
    std::string t;
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!t.empty()) t += "; ";
        t += buf;
    }
    return t;
}

std::string name_text(X509_NAME* name) {
    if (!name) return {};
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<std::size_t>(len > 0 ? len : 0));
    BIO_free(bio);
    return s;
}

std::string serial_text(X509* cert) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    if (!bn) return {};
    char* hex = BN_bn2hex(bn);
    std::string s = hex ? hex : "";
    OPENSSL_free(hex);
    BN_free(bn);
    // Upper-case hex of whole bytes, as `openssl x509 -serial` prints it.
    return s;
}

std::string quote_sh(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    return q + "'";
}

}  // namespace

TlsConn::~TlsConn() {
    close();
}

bool TlsConn::wait_io(int want, Clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{tcp_.fd(), static_cast<short>(want), 0};
        int r = poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

std::string TlsConn::ssl_error(int ret, const char* what) {
    int e = SSL_get_error(ssl_, ret);
    std::string t = std::string(what) + ": ";
    std::string q = drain_errors();
    if (e == SSL_ERROR_SYSCALL)
        t += q.empty() ? (errno ? std::string(std::strerror(errno)) : "unexpected EOF") : q;
    else if (e == SSL_ERROR_ZERO_RETURN)
        t += "closed by peer (close_notify)";
    else
        t += q.empty() ? "SSL error " + std::to_string(e) : q;
    return t;
}

bool TlsConn::connect(std::uint16_t port, const TlsOptions& opt, const std::string& host,
                      milliseconds timeout) {
    close();
    error_.clear();
    info_ = {};
    buf_.clear();
    close_notify_ = false;
    auto deadline = Clock::now() + timeout;
    if (!tcp_.connect(port, host, "", timeout)) {
        error_ = std::string("connect: ") + std::strerror(tcp_.last_errno());
        return false;
    }
    fcntl(tcp_.fd(), F_SETFL, fcntl(tcp_.fd(), F_GETFL) | O_NONBLOCK);

    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) {
        error_ = "SSL_CTX_new: " + drain_errors();
        return false;
    }
    if (opt.security_level >= 0) SSL_CTX_set_security_level(ctx_, opt.security_level);
    if (opt.min_version) SSL_CTX_set_min_proto_version(ctx_, opt.min_version);
    if (opt.max_version) SSL_CTX_set_max_proto_version(ctx_, opt.max_version);
    if (!opt.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx_, opt.cipher_list.c_str()) != 1) {
        error_ = "cipher list: " + drain_errors();
        return false;
    }
    if (!opt.ca_file.empty() &&
        SSL_CTX_load_verify_locations(ctx_, opt.ca_file.c_str(), nullptr) != 1) {
        error_ = "CA file " + opt.ca_file + ": " + drain_errors();
        return false;
    }
    SSL_CTX_set_verify(ctx_, opt.verify && !opt.ca_file.empty() ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       nullptr);
    if (!opt.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx_, opt.cert_file.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx_, opt.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            error_ = "client certificate: " + drain_errors();
            return false;
        }
    }
    // Keep the session (and TLS 1.3 tickets) available through SSL_get1_session.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);

    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, tcp_.fd());
    // Counts the peer's KeyUpdate messages (handshake type 24).
    SSL_set_msg_callback_arg(ssl_, &key_updates_received_);
    SSL_set_msg_callback(
        ssl_, [](int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
            if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
                static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE)
                ++*static_cast<int*>(arg);
        });
    if (!opt.server_name.empty()) SSL_set_tlsext_host_name(ssl_, opt.server_name.c_str());
    if (opt.verify && !opt.ca_file.empty() && opt.check_name) {
        if (!opt.check_ip.empty())
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), opt.check_ip.c_str());
        else if (!opt.server_name.empty())
            SSL_set1_host(ssl_, opt.server_name.c_str());
    }
    if (!opt.alpn.empty()) {
        std::string wire;
        for (const auto& p : opt.alpn) {
            wire += static_cast<char>(p.size());
            wire += p;
        }
        SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
    }
    if (opt.session) SSL_set_session(ssl_, opt.session.get());

    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_connect(ssl_);
        if (r == 1) break;
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (!wait_io(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
                error_ = "handshake timed out";
                info_.verify_result = SSL_get_verify_result(ssl_);
                SSL_free(ssl_);
                ssl_ = nullptr;
                return false;
            }
            continue;
        }
        error_ = ssl_error(r, "handshake");
        info_.verify_result = SSL_get_verify_result(ssl_);
        SSL_free(ssl_);
        ssl_ = nullptr;
        tcp_.close();
        return false;
    }
    fill_info();
    return true;
}

void TlsConn::fill_info() {
    info_.version = SSL_get_version(ssl_);
    info_.cipher = SSL_get_cipher_name(ssl_);
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    info_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    info_.session_reused = SSL_session_reused(ssl_) == 1;
    info_.verify_result = SSL_get_verify_result(ssl_);
    if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
        info_.peer_subject = name_text(X509_get_subject_name(peer));
        info_.peer_issuer = name_text(X509_get_issuer_name(peer));
        info_.peer_serial = serial_text(peer);
    }
}

bool TlsConn::send_all(std::string_view data) {
    if (!ssl_) {
        error_ = "not connected";
        return false;
    }
    auto deadline = Clock::now() + 10s;
    while (!data.empty()) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(ssl_, data.data(),
                          static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (!wait_io(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
                error_ = "write timed out";
                return false;
            }
            continue;
        }
        error_ = ssl_error(n, "write");
        return false;
    }
    return true;
}

bool TlsConn::request_key_update() {
    if (!ssl_) return false;
    return SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED) == 1;
}

long TlsConn::recv_some(std::string& out, milliseconds timeout, std::size_t max) {
    if (!ssl_) {
        error_ = "not connected";
        return -1;
    }
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(ssl_, buf, static_cast<int>(std::min(max, sizeof buf)));
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            return n;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
            close_notify_ = true;
            return 0;
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (!wait_io(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -2;
            continue;
        }
        if (e == SSL_ERROR_SYSCALL && errno == 0) {
            // TCP EOF without close_notify (OpenSSL 3 may also report it as
            // SSL_ERROR_SSL "unexpected eof while reading").
            drain_errors();
            return 0;
        }
        std::string why = ssl_error(n, "read");
        if (why.find("unexpected eof") != std::string::npos) return 0;
        error_ = why;
        return -1;
    }
}

std::optional<Response> TlsConn::read_response(milliseconds timeout, bool head_request,
                                          std::string* error) {
    return reading::response(*this, timeout, head_request, error);
}

StreamResult TlsConn::read_stream(Clock::time_point sent_at, milliseconds timeout) {
    return reading::stream(*this, sent_at, timeout);
}

bool TlsConn::read_into(StreamReader& reader, milliseconds timeout, std::size_t until_events) {
    return reading::into(*this, reader, timeout, until_events);
}

Conn::CloseResult TlsConn::wait_close(milliseconds timeout) {
    return reading::close_wait(*this, timeout);
}

TlsSession TlsConn::session() const {
    if (!ssl_) return {};
    SSL_SESSION* s = SSL_get1_session(ssl_);
    if (!s) return {};
    return TlsSession(s, [](SSL_SESSION* p) { SSL_SESSION_free(p); });
}

void TlsConn::close() {
    if (ssl_) {
        SSL_shutdown(ssl_);  // best effort: one close_notify, no wait
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (ctx_) {
        SSL_CTX_free(ctx_);
        ctx_ = nullptr;
    }
    tcp_.close();
}

void TlsConn::close_with_reset() {
    if (ssl_) {
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (ctx_) {
        SSL_CTX_free(ctx_);
        ctx_ = nullptr;
    }
    tcp_.close_with_reset();
}

std::optional<Response> tls_request_once(std::uint16_t port, const TlsOptions& opt,
                                         const std::string& raw, std::string* error, TlsInfo* info,
                                         milliseconds timeout) {
    TlsConn c;
    if (!c.connect(port, opt, "127.0.0.1", timeout)) {
        if (error) *error = c.error();
        return std::nullopt;
    }
    if (info) *info = c.info();
    if (!c.send_all(raw)) {
        if (error) *error = c.error();
        return std::nullopt;
    }
    bool head = raw.rfind("HEAD ", 0) == 0;
    return c.read_response(timeout, head, error);
}

// ---------------------------------------------------------------- command lines

RunResult s_client(std::uint16_t port, const std::vector<std::string>& args,
                   const std::string& input, milliseconds timeout) {
    static std::atomic<int> counter{0};
    TempDir dir;
    std::string in = dir.write("stdin-" + std::to_string(counter++), input);
    std::string cmd = "exec /usr/bin/openssl s_client -connect 127.0.0.1:" + std::to_string(port);
    for (const auto& a : args) cmd += " " + quote_sh(a);
    cmd += " < " + quote_sh(in);
    return run_command("/bin/sh", {"-c", cmd}, timeout);
}

std::string all_output(const RunResult& r) {
    std::string t;
    for (const auto& l : r.out) t += l + "\n";
    for (const auto& l : r.err) t += l + "\n";
    return t;
}

RunResult curl(const std::vector<std::string>& args, milliseconds timeout) {
    std::vector<std::string> a = {"-sS"};
    a.insert(a.end(), args.begin(), args.end());
    return run_command("/usr/bin/curl", a, timeout);
}

}  // namespace dsgw::it
