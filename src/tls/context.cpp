#include "deepseek_gateway/tls/context.hpp"

#include "deepseek_gateway/tls/material.hpp"

#include <boost/asio/ip/address.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace dsgw::tls {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 ciphers; TLS 1.3 suites are OpenSSL's
// defaults (all of them are modern).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

constexpr unsigned char kSessionIdContext[] = "deepseek-gateway";

[[noreturn]] void fail(const std::string& what) {
    unsigned long e = ERR_get_error();
    std::string detail;
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        detail = std::string(": ") + buf;
    }
    ERR_clear_error();
    throw std::runtime_error(what + detail);
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
    static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
}

std::unique_ptr<ssl::context> server_context(const config::ListenerTlsConfig& cfg,
                                             const config::CertKeyPair& pair) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* c = ctx->native_handle();
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(
        c, cfg.min_version == config::TlsVersion::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) fail("cannot set the TLS 1.2 ciphers");
    if (SSL_CTX_use_certificate_chain_file(c, pair.certificate.c_str()) != 1)
        fail("cannot load certificate \"" + pair.certificate + "\"");
    if (SSL_CTX_use_PrivateKey_file(c, pair.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("cannot load private key \"" + pair.private_key + "\"");
    if (SSL_CTX_check_private_key(c) != 1)
        fail("private key \"" + pair.private_key + "\" does not match \"" + pair.certificate +
             "\"");
    SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
    // Resumption: a server-side session cache and tickets (OpenSSL's
    // default), so a returning client skips the full handshake. Ticket keys
    // are per context, so every reload rotates them.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1);
    SSL_CTX_set_timeout(c, 3600);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (!cfg.client_ca.empty()) {
        if (SSL_CTX_load_verify_locations(c, cfg.client_ca.c_str(), nullptr) != 1)
            fail("cannot load client_ca \"" + cfg.client_ca + "\"");
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca.c_str());
        if (names) SSL_CTX_set_client_CA_list(c, names);
        int mode = SSL_VERIFY_PEER;
        if (cfg.verify_client == config::VerifyClient::required)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(c, mode, nullptr);
    }
    return ctx;
}

}  // namespace

ServerContext::ServerContext(const config::ListenerTlsConfig& cfg) {
    if (cfg.certificates.empty()) throw std::runtime_error("no certificate configured");
    for (const auto& pair : cfg.certificates) contexts_.push_back(server_context(cfg, pair));
    client_ca_ = !cfg.client_ca.empty();
    not_after_ = check_pair(cfg.certificates.front().certificate,
                            cfg.certificates.front().private_key)
                     .not_after;
    if (contexts_.size() > 1) {
        SSL_CTX* first = contexts_.front()->native_handle();
        SSL_CTX_set_tlsext_servername_callback(first, &ServerContext::on_server_name);
        SSL_CTX_set_tlsext_servername_arg(first, this);
    }
}

ServerContext::~ServerContext() = default;

int ServerContext::on_server_name(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<ServerContext*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the first certificate
    for (std::size_t i = 1; i < self->contexts_.size(); ++i) {
        SSL_CTX* c = self->contexts_[i]->native_handle();
        X509* cert = SSL_CTX_get0_certificate(c);
        if (cert && X509_check_host(cert, name, 0, 0, nullptr) == 1) {
            SSL_set_SSL_CTX(ssl, c);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

ClientContext::ClientContext(const config::UpstreamTlsConfig& cfg)
    : ctx_(ssl::context::tls_client), server_name_(cfg.server_name), verify_(cfg.verify) {
    SSL_CTX* c = ctx_.native_handle();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (cfg.ca.empty()) {
        if (SSL_CTX_set_default_verify_paths(c) != 1) fail("cannot load the system CA store");
    } else if (SSL_CTX_load_verify_locations(c, cfg.ca.c_str(), nullptr) != 1) {
        fail("cannot load ca \"" + cfg.ca + "\"");
    }
    SSL_CTX_set_verify(c, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!cfg.client.certificate.empty()) {
        if (SSL_CTX_use_certificate_chain_file(c, cfg.client.certificate.c_str()) != 1)
            fail("cannot load certificate \"" + cfg.client.certificate + "\"");
        if (SSL_CTX_use_PrivateKey_file(c, cfg.client.private_key.c_str(), SSL_FILETYPE_PEM) !=
            1)
            fail("cannot load private key \"" + cfg.client.private_key + "\"");
    }
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
}

ClientContext::~ClientContext() = default;

void ClientContext::prepare(SSL* ssl, const std::string& host) const {
    const std::string& name = server_name_.empty() ? host : server_name_;
    boost::system::error_code ec;
    auto ip = boost::asio::ip::make_address(name, ec);
    if (ec) {
        SSL_set_tlsext_host_name(ssl, name.c_str());
        if (verify_) SSL_set1_host(ssl, name.c_str());
    } else if (verify_) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.to_string().c_str());
    }
}

std::string peer_subject(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return {};
    // RFC 2253: "CN=team-a,O=Example", the form operators grep for.
    BIO* bio = BIO_new(BIO_s_mem());
    if (!bio) return {};
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, n > 0 ? static_cast<std::size_t>(n) : 0);
    BIO_free(bio);
    return out;
}

}  // namespace dsgw::tls
