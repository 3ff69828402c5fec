// The harness's HTTP/1.1 response parser and SSE stream reader (see harness.hpp).

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "harness.hpp"

namespace dsgw::it {

std::string to_lower(std::string_view s) {
    std::string t(s);
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t;
}

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

// ---------------------------------------------------------------- Response

std::optional<std::string> Response::header(std::string_view name) const {
    std::string n = to_lower(name);
    for (const auto& [k, v] : headers)
        if (to_lower(k) == n) return v;
    return std::nullopt;
}

std::size_t Response::header_count(std::string_view name) const {
    std::string n = to_lower(name);
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const auto& h) { return to_lower(h.first) == n; }));
}

void ResponseParser::fail(std::string why) {
    state_ = State::error;
    error_ = std::move(why);
}

bool ResponseParser::parse_head(std::string_view head) {
    resp_ = Response{};
    std::size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    std::size_t sp1 = status_line.find(' ');
    if (sp1 == std::string_view::npos || status_line.substr(0, 5) != "HTTP/") {
        fail("bad status line: " + std::string(status_line));
        return false;
    }
    resp_.version = std::string(status_line.substr(0, sp1));
    std::size_t sp2 = status_line.find(' ', sp1 + 1);
    std::string code(status_line.substr(
        sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1));
    resp_.status = std::atoi(code.c_str());
    if (sp2 != std::string_view::npos) resp_.reason = std::string(status_line.substr(sp2 + 1));
    std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
        std::size_t e = head.find("\r\n", pos);
        if (e == std::string_view::npos) e = head.size();
        std::string_view line = head.substr(pos, e - pos);
        pos = e + 2;
        if (line.empty()) continue;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            fail("bad header line: " + std::string(line));
            return false;
        }
        resp_.headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
    return true;
}

std::size_t ResponseParser::feed(std::string_view data) {
    std::size_t used = 0;
    while (used < data.size() && state_ != State::done && state_ != State::error) {
        std::string_view rest = data.substr(used);
        switch (state_) {
            case State::head: {
                std::size_t before = pending_.size();
                pending_.append(rest);
                std::size_t end = pending_.find("\r\n\r\n");
                if (end == std::string::npos) {
                    used = data.size();
                    if (pending_.size() > (1u << 20)) fail("response head too large");
                    break;
                }
                used += end + 4 - before;
                std::string head = pending_.substr(0, end);
                pending_.clear();
                if (!parse_head(head)) break;
                int st = resp_.status;
                if (st >= 100 && st < 200 && st != 101) break;  // interim; parse the next head
                auto te = resp_.header("Transfer-Encoding");
                auto cl = resp_.header("Content-Length");
                if (head_request_ || st == 204 || st == 304 || (st >= 100 && st < 200)) {
                    state_ = State::done;
                } else if (te && to_lower(*te).find("chunked") != std::string::npos) {
                    resp_.chunked = true;
                    state_ = State::chunk_size;
                } else if (cl) {
                    remaining_ = std::strtoull(cl->c_str(), nullptr, 10);
                    state_ = remaining_ == 0 ? State::done : State::length_body;
                } else {
                    resp_.close_delimited = true;
                    state_ = State::until_close;
                }
                break;
            }
            case State::length_body: {
                std::size_t n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
                resp_.body.append(rest.substr(0, n));
                used += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = State::done;
                break;
            }
            case State::until_close:
                resp_.body.append(rest);
                used = data.size();
                break;
            case State::chunk_size:
            case State::chunk_crlf:
            case State::trailers: {
                std::size_t nl = rest.find('\n');
                if (nl == std::string_view::npos) {
                    pending_.append(rest);
                    used = data.size();
                    if (pending_.size() > 4096) fail("chunk line too long");
                    break;
                }
                pending_.append(rest.substr(0, nl + 1));
                used += nl + 1;
                std::string line = trim(pending_.substr(0, pending_.size() - 1));
                pending_.clear();
                if (state_ == State::chunk_crlf) {
                    if (!line.empty())
                        fail("missing CRLF after chunk data");
                    else
                        state_ = State::chunk_size;
                } else if (state_ == State::trailers) {
                    if (line.empty()) state_ = State::done;
                } else {
                    char* end = nullptr;
                    remaining_ = std::strtoull(line.c_str(), &end, 16);
                    if (end == line.c_str()) {
                        fail("bad chunk size line: " + line);
                    } else if (remaining_ == 0) {
                        state_ = State::trailers;
                    } else {
                        resp_.chunks.emplace_back();
                        state_ = State::chunk_data;
                    }
                }
                break;
            }
            case State::chunk_data: {
                std::size_t n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
                resp_.body.append(rest.substr(0, n));
                resp_.chunks.back().append(rest.substr(0, n));
                used += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = State::chunk_crlf;
                break;
            }
            default:
                return used;
        }
    }
    return used;
}

void ResponseParser::feed_eof() {
    if (state_ == State::until_close)
        state_ = State::done;
    else if (state_ != State::done && state_ != State::error)
        fail(state_ == State::head && pending_.empty()
                 ? "connection closed before any response byte"
                 : "connection closed mid-response");
}

// ---------------------------------------------------------------- streams

std::vector<const SseEvent*> StreamResult::token_events() const {
    std::vector<const SseEvent*> v;
    for (const auto& e : events)
        if (e.data != "[DONE]") v.push_back(&e);
    return v;
}

bool StreamResult::saw_done() const {
    return std::any_of(events.begin(), events.end(),
                       [](const SseEvent& e) { return e.data == "[DONE]"; });
}

void StreamReader::scan_events(Clock::time_point at) {
    const std::string& body = parser_.response().body;
    for (;;) {
        std::size_t end = body.find("\n\n", sse_pos_);
        if (end == std::string::npos) return;
        std::string_view block(body.data() + sse_pos_, end - sse_pos_);
        sse_pos_ = end + 2;
        SseEvent ev;
        ev.at = at;
        ev.recv_index = result_.recvs.empty() ? 0 : result_.recvs.size() - 1;
        bool any = false;
        std::size_t pos = 0;
        while (pos <= block.size()) {
            std::size_t nl = block.find('\n', pos);
            std::string_view line =
                block.substr(pos, nl == std::string_view::npos ? block.npos : nl - pos);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.substr(0, 5) == "data:") {
                std::string_view d = line.substr(5);
                if (!d.empty() && d.front() == ' ') d.remove_prefix(1);
                if (any) ev.data += "\n";
                ev.data += d;
                any = true;
            }
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
        if (any) result_.events.push_back(std::move(ev));
    }
}

bool StreamReader::on_data(std::string_view data, Clock::time_point at) {
    result_.recvs.push_back({at, data.size()});
    bool had_head = parser_.head_done();
    parser_.feed(data);
    if (!had_head && parser_.head_done()) {
        result_.head_at = at;
        result_.response = parser_.response();  // the head, for use mid-stream
    }
    scan_events(at);
    if (parser_.done()) {
        result_.ok = true;
        result_.done_at = at;
        result_.response = parser_.response();
    } else if (parser_.failed()) {
        result_.error = parser_.error();
        result_.response = parser_.response();
    }
    return finished();
}

bool StreamReader::on_eof(Clock::time_point at) {
    parser_.feed_eof();
    if (parser_.done()) {
        result_.ok = true;
        result_.done_at = at;
    } else {
        result_.error = parser_.error();
    }
    result_.response = parser_.response();
    return true;
}

}  // namespace dsgw::it
