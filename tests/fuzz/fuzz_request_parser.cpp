// RelayParser<true> (src/proxy/relay_parser.hpp) fed the way the session
// feeds it, in reads whose sizes the input chooses, with its invariants
// checked at every read (relay_driver.hpp); then the same bytes in one read
// must give the same outcome.
//
// Input: byte 0 the limits and eager (limits_from), byte 1 how many slice
// sizes follow (0-7; none: one read), the sizes (0 = all the rest), then the
// bytes of the connection.

#include "relay_driver.hpp"

#include "same_outcome.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dsgw::fuzz;
    if (size < 2) return 0;
    Limits l = limits_from(data[0]);
    l.skip = false;
    const std::size_t n = std::min<std::size_t>(data[1] % 8, size - 2);
    Slices slices;
    slices.sizes.assign(data + 2, data + 2 + n);
    const std::string_view wire(reinterpret_cast<const char*>(data + 2 + n), size - 2 - n);
    current_wire() = wire;
    const auto sliced = run_ours<true>(wire, l, slices, false);
    const auto whole = run_ours<true>(wire, l, Slices{}, false);
    check_same_outcome(sliced, whole);
    return 0;
}
