#pragma once
// Our parser against Beast's on the same bytes (the differential targets).
// When both take a message, they must agree on where it ends, its body,
// chunked, keep-alive, Content-Length and the start line: a disagreement is
// where a request or a response could be framed one way by us and another
// way by the server behind us. Where we take a message Beast refuses, we
// are the laxer parser: a finding too. Where we refuse what Beast takes, we
// are stricter on purpose (README.md lists how): not compared.

#include "relay_driver.hpp"

namespace dsgw::fuzz {

// The values of the Transfer-Encoding lines of the head at the start of
// `wire` hold a ';': codings with parameters. Beast's token_list stops at
// the ';', so it misses a chunked after it ("gzip;q=1, chunked" is not
// chunked to Beast); we read them by the grammar (RFC 9110 §10.1.4).
inline bool te_with_parameters(std::string_view wire) {
    const auto head = wire.substr(0, wire.find("\r\n\r\n"));
    constexpr std::string_view kName = "transfer-encoding:";
    for (std::size_t at = 0; at < head.size();) {
        const auto eol = std::min(head.find("\r\n", at), head.size());
        const auto line = head.substr(at, eol - at);
        if (line.size() >= kName.size() &&
            std::equal(kName.begin(), kName.end(), line.begin(),
                       [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b + 32 : b); }) &&
            line.find(';') != std::string_view::npos)
            return true;
        at = eol + 2;
    }
    return false;
}

inline void compare_with_beast(std::string_view wire, const Outcome& ours, const Outcome& theirs) {
    if (ours.kind != Outcome::complete) return;
    if (te_with_parameters(wire)) return;             // intended (README.md)
    DSGW_FUZZ_CHECK(theirs.kind != Outcome::failed);  // we are laxer
    if (theirs.kind != Outcome::complete) {
        // Beast wants more where we are done: it read the message as longer.
        finding("we end a message Beast reads on");
    }
    DSGW_FUZZ_CHECK(ours.used == theirs.used);
    DSGW_FUZZ_CHECK(ours.body == theirs.body);
    DSGW_FUZZ_CHECK(ours.chunked == theirs.chunked);
    DSGW_FUZZ_CHECK(ours.keep_alive == theirs.keep_alive);
    DSGW_FUZZ_CHECK(ours.content_length == theirs.content_length);
    DSGW_FUZZ_CHECK(ours.need_eof == theirs.need_eof);
    DSGW_FUZZ_CHECK(ours.start_line == theirs.start_line);
}

}  // namespace dsgw::fuzz
