// parse_proxy_header (access/proxy_protocol.hpp), PROXY v1 and v2, on any
// bytes. Beyond "no crash, no overread" (ASan), the promises its header
// makes:
// - done: the header is the first `consumed` bytes, alone it parses the
//   same, and every shorter prefix asks for more without asking past its end
//   (so reading min_total bytes never eats the client's first bytes);
// - need_more: min_total is more than what there is, and bounded;
// - invalid: more bytes never make it valid.

#include "check.hpp"
#include "deepseek_gateway/access/cidr.hpp"
#include "deepseek_gateway/access/proxy_protocol.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using namespace dsgw::access;

bool same_address(const std::optional<ProxyAddress>& a, const std::optional<ProxyAddress>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->address == b->address && a->port == b->port);
}

void check_prefix(std::span<const std::uint8_t> in, std::size_t k, std::size_t consumed) {
    const auto p = parse_proxy_header(in.first(k));
    DSGW_FUZZ_CHECK(p.status == ProxyStatus::need_more);
    DSGW_FUZZ_CHECK(p.min_total > k && p.min_total <= consumed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    const auto h = parse_proxy_header(in);
    switch (h.status) {
        case ProxyStatus::done: {
            DSGW_FUZZ_CHECK(h.error == nullptr);
            DSGW_FUZZ_CHECK(h.consumed > 0 && h.consumed <= size);
            DSGW_FUZZ_CHECK(h.version == 1 || h.version == 2);
            if (h.version == 1) DSGW_FUZZ_CHECK(h.consumed <= kProxyV1MaxBytes);
            if (h.version == 2)
                DSGW_FUZZ_CHECK(h.consumed >= kProxyV2HeaderBytes &&
                                h.consumed <= kProxyHeaderMaxBytes);
            DSGW_FUZZ_CHECK(h.source.has_value() == h.destination.has_value());
            if (h.is_local) DSGW_FUZZ_CHECK(!h.source);
            if (h.source) {
                DSGW_FUZZ_CHECK(normalize(h.source->address) == h.source->address);
                DSGW_FUZZ_CHECK(normalize(h.destination->address) == h.destination->address);
            }
            const auto alone = parse_proxy_header(in.first(h.consumed));
            DSGW_FUZZ_CHECK(alone.status == ProxyStatus::done && alone.consumed == h.consumed);
            DSGW_FUZZ_CHECK(alone.version == h.version && alone.is_local == h.is_local);
            DSGW_FUZZ_CHECK(same_address(alone.source, h.source));
            DSGW_FUZZ_CHECK(same_address(alone.destination, h.destination));
            // Every prefix of a v1 line; for v2 the first bytes and a few more.
            if (h.version == 1) {
                for (std::size_t k = 0; k < h.consumed; ++k) check_prefix(in, k, h.consumed);
            } else {
                for (std::size_t k = 0; k < 20 && k < h.consumed; ++k)
                    check_prefix(in, k, h.consumed);
                for (std::size_t k : {h.consumed / 2, h.consumed - 2, h.consumed - 1})
                    if (k < h.consumed) check_prefix(in, k, h.consumed);
            }
            break;
        }
        case ProxyStatus::need_more:
            DSGW_FUZZ_CHECK(h.error == nullptr);
            DSGW_FUZZ_CHECK(h.min_total > size && h.min_total <= kProxyHeaderMaxBytes);
            break;
        case ProxyStatus::invalid: {
            DSGW_FUZZ_CHECK(h.error != nullptr);
            std::vector<std::uint8_t> longer(data, data + size);
            for (std::uint8_t b : {std::uint8_t{'\n'}, std::uint8_t{0}, std::uint8_t{' '}}) {
                longer.push_back(b);
                DSGW_FUZZ_CHECK(parse_proxy_header(longer).status == ProxyStatus::invalid);
            }
            break;
        }
    }
    return 0;
}
