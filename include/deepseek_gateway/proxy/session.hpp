#pragma once
// The entry to the request path: one client connection (proxy/connection.cpp)
// and its exchanges, one per request (proxy/exchange.hpp).

#include "deepseek_gateway/access/admission.hpp"

#include "deepseek_gateway/net/socket.hpp"

namespace dsgw::app {
class Worker;
}
namespace dsgw::net {
class Listener;
}

namespace dsgw::proxy {

// Starts serving `socket` on the worker's event loop. `admission` is the
// accept-time access check (access/admission.hpp): admit, read the PROXY
// header first, or refuse — a refused peer reaches here only when the
// listener answers refusals with 403.
void start_session(app::Worker& worker, net::Listener& listener, net::Socket socket,
                   const access::Admission& admission);

}  // namespace dsgw::proxy
