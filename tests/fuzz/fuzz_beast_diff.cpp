// RelayParser against Beast's http::parser (string_body), the same limits,
// the same bytes: see beast_compare.hpp for what counts as a finding.
//
// Input: byte 0: bit 7 a request (else a response, the connection closed
// after the last byte), the rest the limits and skip (limits_from); then the
// bytes of the connection.

#include "beast_compare.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dsgw::fuzz;
    if (size < 1) return 0;
    Limits l = limits_from(data[0]);
    const bool request = (data[0] & 0x80) != 0;
    const std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
    current_wire() = wire;
    if (request) {
        l.skip = false;
        compare_with_beast(wire, run_ours<true>(wire, l, Slices{}, false),
                           run_beast<true>(wire, l, false));
    } else {
        compare_with_beast(wire, run_ours<false>(wire, l, Slices{}, true),
                           run_beast<false>(wire, l, true));
    }
    return 0;
}
