// RelayParser<false> fed the way the session feeds it, in reads whose sizes
// the input chooses, as an answer to HEAD (skip) or not, with or without the
// upstream closing after the last byte (put_eof); invariants checked at every
// read (relay_driver.hpp); the same bytes in one read give the same outcome.
//
// Input: byte 0 the limits, eager and skip (limits_from), bit 7 of it an EOF
// after the last byte; byte 1 how many slice sizes follow (0-7), the sizes
// (0 = all the rest), then the bytes of the connection.

#include "relay_driver.hpp"

#include "same_outcome.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dsgw::fuzz;
    if (size < 2) return 0;
    const Limits l = limits_from(data[0]);
    const bool eof = (data[0] & 0x80) != 0;
    const std::size_t n = std::min<std::size_t>(data[1] % 8, size - 2);
    Slices slices;
    slices.sizes.assign(data + 2, data + 2 + n);
    const std::string_view wire(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
    current_wire() = wire;
    const auto sliced = run_ours<false>(wire, l, slices, eof);
    const auto whole = run_ours<false>(wire, l, Slices{}, eof);
    check_same_outcome(sliced, whole);
    return 0;
}
