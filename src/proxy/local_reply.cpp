// Local replies: the gateway's own answers, in the OpenAI error shape.

#include "deepseek_gateway/proxy/local_reply.hpp"

#include "deepseek_gateway/util/json.hpp"

#include <boost/beast/http/status.hpp>

namespace dsgw::proxy {

std::string local_reply_body(unsigned status, std::string_view message) {
    std::string body = R"({"error":{"message":")";
    util::append_json_escaped(body, message);
    body += R"(","type":"gateway_error","code":)";
    body += std::to_string(status);
    body += "}}";
    return body;
}

std::string openai_error_body(std::string_view message, std::string_view type,
                              const std::string_view* param, const std::string_view* code) {
    std::string body = R"({"error":{"message":")";
    util::append_json_escaped(body, message);
    body += R"(","type":")";
    util::append_json_escaped(body, type);
    body += R"(","param":)";
    auto nullable = [&](const std::string_view* v) {
        if (!v) {
            body += "null";
            return;
        }
        body += '"';
        util::append_json_escaped(body, *v);
        body += '"';
    };
    nullable(param);
    body += R"(,"code":)";
    nullable(code);
    body += "}}";
    return body;
}

std::string local_response(unsigned status, std::string_view body, bool close,
                           std::string_view extra_headers) {
    auto reason = boost::beast::http::obsolete_reason(
        static_cast<boost::beast::http::status>(status));
    std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
    out.append(reason.data(), reason.size());
    out += "\r\nContent-Type: application/json\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
    if (close) out += "Connection: close\r\n";
    out.append(extra_headers);
    out += "\r\n";
    out += body;
    return out;
}

std::string local_reply(unsigned status, std::string_view message, bool close,
                        std::string_view extra_headers) {
    return local_response(status, local_reply_body(status, message), close, extra_headers);
}

}  // namespace dsgw::proxy
