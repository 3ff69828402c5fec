#pragma once
// nginx's smooth weighted round robin, precomputed (private to src/balancer/).

#include "deepseek_gateway/upstream/server.hpp"

#include <cstdint>
#include <vector>

namespace dsgw::balancer::detail {

// One period of the order nginx's smooth WRR visits `servers` in, as indices
// into `servers`: weights 3:1:1 give 0 1 0 2 0. Its length is the sum of the
// weights divided by their gcd. Empty for an empty list.
std::vector<std::uint32_t> smooth_wrr_cycle(const std::vector<upstream::UpstreamServer*>& servers);

}  // namespace dsgw::balancer::detail
