// X-Forwarded-For (access/forwarded_for.hpp): resolve_forwarded_for over
// values from the input, from a trusted or an untrusted peer, and
// parse_forwarded_element over each element. Checked:
// - an untrusted peer is the client, and upstream gets only its address;
// - from a trusted peer, the client is the peer or one of the elements, and
//   upstream gets the values then the peer;
// - every address comes out normalized and prints back to itself;
// - what goes upstream holds no CR, LF or NUL the input did not.
//
// Input: byte 0 picks the peer, the rest is the values, one per line.

#include "check.hpp"
#include "deepseek_gateway/access/cidr.hpp"
#include "deepseek_gateway/access/forwarded_for.hpp"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace dsgw::access;
namespace ip = boost::asio::ip;

const CidrSet& trusted() {
    static const CidrSet set = [] {
        CidrSet s;
        for (auto c : {"10.0.0.0/8", "2001:db8::/32", "127.0.0.1", "::ffff:192.168.0.0/112"})
            s.add(c);
        return s;
    }();
    return set;
}

std::vector<std::string_view> elements_of(std::string_view v) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto comma = v.find(',');
        out.push_back(v.substr(0, comma));
        if (comma == std::string_view::npos) return out;
        v.remove_prefix(comma + 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static const ip::address peers[] = {
        ip::make_address("10.1.2.3"),           ip::make_address("192.0.2.1"),
        ip::make_address("2001:db8::5"),        ip::make_address("::ffff:10.0.0.9"),
        ip::make_address("::ffff:192.168.1.1"), ip::make_address("::1")};
    const auto& peer = peers[data[0] % std::size(peers)];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    std::vector<std::string_view> values;
    for (std::string_view rest = text; values.size() < 8;) {
        const auto nl = rest.find('\n');
        values.push_back(rest.substr(0, nl));
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }

    const auto r = resolve_forwarded_for(peer, values, trusted());
    DSGW_FUZZ_CHECK(normalize(r.address) == r.address);
    DSGW_FUZZ_CHECK(r.peer_trusted == trusted().contains(peer));
    DSGW_FUZZ_CHECK(client_address_from_xff(peer, values, trusted()) == r.address);
    const std::string peer_text = normalize(peer).to_string();
    if (!r.peer_trusted) {
        DSGW_FUZZ_CHECK(r.address == normalize(peer) && r.forwarded_for == peer_text &&
                        !r.malformed);
    } else {
        DSGW_FUZZ_CHECK(r.forwarded_for.size() >= peer_text.size() &&
                        r.forwarded_for.compare(r.forwarded_for.size() - peer_text.size(),
                                                peer_text.size(), peer_text) == 0);
        bool found = r.address == normalize(peer);
        for (auto v : values)
            for (auto e : elements_of(v)) {
                const auto a = parse_forwarded_element(e);
                if (a && *a == r.address) found = true;
            }
        DSGW_FUZZ_CHECK(found);
    }
    const auto count = [](std::string_view s, char c) { return std::count(s.begin(), s.end(), c); };
    for (char c : {'\r', '\n', '\0'})
        if (count(text, c) == 0) DSGW_FUZZ_CHECK(count(r.forwarded_for, c) == 0);

    for (auto v : values)
        for (auto e : elements_of(v)) {
            const auto a = parse_forwarded_element(e);
            if (!a) continue;
            DSGW_FUZZ_CHECK(normalize(*a) == *a);
            // Only the bytes of an address, a port and whitespace.
            DSGW_FUZZ_CHECK(e.find('\0') == std::string_view::npos);
            const auto again = parse_forwarded_element(a->to_string());
            DSGW_FUZZ_CHECK(again && *again == *a);
            if (a->is_v6()) {
                const auto bracketed = parse_forwarded_element("[" + a->to_string() + "]:443");
                DSGW_FUZZ_CHECK(bracketed && *bracketed == *a);
            }
        }
    return 0;
}
