#pragma once
// The answers the gateway makes itself (every one goes through here), in the
// OpenAI error shape (SPEC §4):
// {"error":{"message":"...","type":"gateway_error","code":NNN}}, or, for the
// errors of model routing, OpenAI's own bodies (openai_error_body()).

#include <string>
#include <string_view>

namespace dsgw::proxy {

// A complete HTTP/1.1 response (head and JSON body). `close` adds
// "Connection: close". `extra_headers` are whole header lines ending in CRLF.
std::string local_reply(unsigned status, std::string_view message, bool close,
                                std::string_view extra_headers = {});

// The JSON body alone.
std::string local_reply_body(unsigned status, std::string_view message);

// A complete HTTP/1.1 response with `body` (JSON) as it is.
std::string local_response(unsigned status, std::string_view body, bool close,
                           std::string_view extra_headers = {});

// OpenAI's error body, for the errors an SDK tells apart by type and code
// (SPEC §8): {"error":{"message":..,"type":..,"param":..,"code":..}}, where
// a null `param` or `code` is JSON null.
std::string openai_error_body(std::string_view message, std::string_view type,
                              const std::string_view* param, const std::string_view* code);

}  // namespace dsgw::proxy
