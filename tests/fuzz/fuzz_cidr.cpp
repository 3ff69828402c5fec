// CidrSet::add (access/cidr.hpp) over lines from the input. Checked: what it
// takes prints back (to_strings) as text it takes again, to the same set;
// every range contains its own network address; a range is never taken from
// text with a NUL in it (the YAML loader can produce one, and Asio's parser
// would stop reading there); contains() agrees between the two sets.
//
// Input: the ranges, one per line; the last 16 bytes also make an address to
// look up.

#include "check.hpp"
#include "deepseek_gateway/access/cidr.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace dsgw::access;
namespace ip = boost::asio::ip;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    CidrSet set;
    std::size_t taken = 0;
    for (std::string_view rest = text;;) {
        const auto nl = rest.find('\n');
        const auto line = rest.substr(0, nl);
        if (!set.add(line)) {
            ++taken;
            DSGW_FUZZ_CHECK(line.find('\0') == std::string_view::npos);
        }
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    DSGW_FUZZ_CHECK(set.size() == taken);
    const auto strings = set.to_strings();
    CidrSet again;
    for (const auto& s : strings) {
        DSGW_FUZZ_CHECK(!again.add(s));
        const auto slash = s.find('/');
        DSGW_FUZZ_CHECK(slash != std::string::npos);
        boost::system::error_code ec;
        const auto network = ip::make_address(s.substr(0, slash), ec);
        DSGW_FUZZ_CHECK(!ec && set.contains(network));
    }
    DSGW_FUZZ_CHECK(again.to_strings() == strings);

    if (size >= 16) {
        ip::address_v6::bytes_type b;
        std::memcpy(b.data(), data + size - 16, 16);
        const ip::address v6{ip::address_v6(b)};
        const ip::address v4{ip::address_v4({b[0], b[1], b[2], b[3]})};
        DSGW_FUZZ_CHECK(set.contains(v6) == again.contains(v6));
        DSGW_FUZZ_CHECK(set.contains(v4) == again.contains(v4));
        // A mapped address matches as its IPv4 address does.
        DSGW_FUZZ_CHECK(set.contains(ip::make_address_v6(ip::v4_mapped, v4.to_v4())) ==
                        set.contains(v4));
    }
    return 0;
}
