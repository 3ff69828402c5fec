#pragma once
// The outcome of a message must not depend on how its bytes were split into
// reads.

#include "relay_driver.hpp"

namespace dsgw::fuzz {

inline void check_same_outcome(const Outcome& a, const Outcome& b) {
    DSGW_FUZZ_CHECK(a.kind == b.kind);
    if (a.kind == Outcome::failed) DSGW_FUZZ_CHECK(a.ec == b.ec);
    if (a.kind != Outcome::complete) return;
    DSGW_FUZZ_CHECK(a.used == b.used);
    DSGW_FUZZ_CHECK(a.body == b.body);
    DSGW_FUZZ_CHECK(a.start_line == b.start_line);
    DSGW_FUZZ_CHECK(a.keep_alive == b.keep_alive);
    DSGW_FUZZ_CHECK(a.chunked == b.chunked);
    DSGW_FUZZ_CHECK(a.content_length == b.content_length);
    DSGW_FUZZ_CHECK(a.need_eof == b.need_eof);
}

}  // namespace dsgw::fuzz
