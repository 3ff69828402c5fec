#pragma once
// The answers the gateway makes itself (every one goes through here), in the
// OpenAI error shape (SPEC §4):
// {"error":{"message":"...","type":"gateway_error","code":NNN}}

#include <string>
#include <string_view>

namespace dsgw::proxy {

// A complete HTTP/1.1 response (head and JSON body). `close` adds
// "Connection: close". `extra_headers` are whole header lines ending in CRLF.
std::string local_reply(unsigned status, std::string_view message, bool close,
                                std::string_view extra_headers = {});

// The JSON body alone.
std::string local_reply_body(unsigned status, std::string_view message);

}  // namespace dsgw::proxy
