#pragma once
// OpenSSL contexts built from the configuration: one ServerContext per TLS
// listener (several certificates chosen by SNI), one ClientContext per
// upstream that speaks TLS. Built with every configuration (start and reload)
// and shared read-only by the workers; OpenSSL contexts are safe to use from
// several threads once set up.

#include "deepseek_gateway/config/config.hpp"

#include <boost/asio/ssl/context.hpp>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace dsgw::tls {

class ServerContext {
public:
    // Throws std::runtime_error naming the file at fault.
    explicit ServerContext(const config::ListenerTlsConfig& cfg);
    ~ServerContext();

    // The context a handshake starts with (the first certificate); the SNI
    // callback switches to another certificate's context when the client's
    // server name matches it.
    boost::asio::ssl::context& context() { return *contexts_.front(); }
    std::time_t not_after() const { return not_after_; }  // first certificate's
    bool requests_client_certificate() const { return client_ca_; }

private:
    static int on_server_name(SSL* ssl, int* alert, void* arg);
    std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;
    std::time_t not_after_ = 0;
    bool client_ca_ = false;
};

class ClientContext {
public:
    // Throws std::runtime_error naming the file at fault.
    explicit ClientContext(const config::UpstreamTlsConfig& cfg);
    ~ClientContext();

    boost::asio::ssl::context& context() { return ctx_; }
    // Prepares a new connection's SSL object: SNI and the name the server's
    // certificate must carry (`server_name` from the config, else `host`).
    void prepare(SSL* ssl, const std::string& host) const;

private:
    boost::asio::ssl::context ctx_;
    std::string server_name_;
    bool verify_;
};

// The verified client certificate's subject ("CN=team-a,O=Example"), or "".
std::string peer_subject(SSL* ssl);

}  // namespace dsgw::tls
