#pragma once
// The types a worker's connections use: sockets and coroutines bound to
// io_context's own executor type instead of the type-erased any_io_executor,
// so that each completion resumes its coroutine without going through the
// type erasure (no any_executor copies, no indirect calls).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dsgw::net {

using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
template <class T>
using Task = boost::asio::awaitable<T, Executor>;

// The completion token of the request path: `co_await op(nothrow)` gives the
// error code with the result, as a tuple, instead of throwing.
inline constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable_t<Executor>{});

}  // namespace dsgw::net
