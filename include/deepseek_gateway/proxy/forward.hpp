#pragma once
// Header rewriting between the two sides (SPEC §4): hop-by-hop headers
// removed, X-Forwarded-* and Via set, framing headers chosen by us. Pure
// functions over parsed heads (head.hpp), so they are unit-tested directly.
// Only the proxy code and its tests include this header.

#include "deepseek_gateway/proxy/head.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace dsgw::proxy {

// How a message body travels on the wire we write.
enum class Framing {
    none,            // no body
    content_length,  // Content-Length: N
    chunked,         // Transfer-Encoding: chunked
    close,           // body ends when the connection closes (HTTP/1.0 clients only)
};

struct ForwardContext {
    std::string_view client_address;  // "192.0.2.7" or "2001:db8::1", no port
    std::string_view proto;           // "http" or "https"
    std::string_view default_host;    // Host to send when the client sent none
    // X-Forwarded-For to send; empty: client_address. Behind trusted proxies
    // it is the received chain with the peer appended (access/forwarded_for.hpp).
    std::string_view forwarded_for = {};
    bool strip_authorization = false;  // the gateway checked the API key itself
    // An absolute-form request (request_target.hpp): the origin form sent
    // instead of its target ("/" is put first when it does not start with
    // one), and the target's authority, sent as Host instead of the Host
    // field's value (RFC 9112 §3.2.2). Both empty otherwise.
    std::string_view origin_form = {};
    std::string_view authority = {};
};

// True when `name` (a field name: a token) is hop-by-hop: one of RFC 9110
// §7.6.1's fixed list (with the framing headers), or a name listed in
// `connection` (the value(s) of the request's Connection header, comma
// separated). The same test the head writers apply to each field.
bool is_hop_by_hop(std::string_view name, std::string_view connection);

// Appends the request head we send upstream (always HTTP/1.1, ends with the
// blank line). `body_length` is used with Framing::content_length.
void build_upstream_request_head(const RequestHead& req, const ForwardContext& ctx,
                                 Framing framing, std::uint64_t body_length, std::string& out);

// Appends the response head we send to the client. `keep_alive` says whether
// the connection stays open after this response; the caller decided it from
// both sides' wishes and from the framing.
void build_client_response_head(const ResponseHead& res, Framing framing,
                                std::uint64_t body_length, bool keep_alive,
                                unsigned client_version, std::string& out);

// Appends an interim (1xx) response head for the client: its status line and
// its end-to-end fields, without framing or Connection fields of our own.
void build_interim_response_head(const ResponseHead& res, std::string& out);

// The values of every Connection header of `h`, joined with commas.
std::string connection_tokens(const Head& h);

}  // namespace dsgw::proxy
