#include "deepseek_gateway/upstream/pool.hpp"

#include <algorithm>

namespace dsgw::upstream {

std::shared_ptr<UpstreamConnection> UpstreamPool::take(const UpstreamServer* server) {
    auto it = idle_.find(server);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto conn = std::move(it->second.back());
    it->second.pop_back();
    unwatch(*conn);
    return conn;
}

void UpstreamPool::unwatch(UpstreamConnection& conn) {
    ++conn.idle_generation;  // an armed watch, when it completes, is stale
    conn.pool_ = nullptr;
    if (conn.queued()) {
        watch_later_.remove(conn);  // not armed yet: nothing to cancel
        return;
    }
    boost::system::error_code ec;
    conn.socket.cancel(ec);
}

void UpstreamConnection::on_due() {
    if (pool_) pool_->watch(shared_from_this());
}

void UpstreamPool::put(std::shared_ptr<UpstreamConnection> conn, unsigned max_idle) {
    if (max_idle == 0 || !conn->socket.is_open()) return;
    auto& q = idle_[conn->server];
    while (q.size() >= max_idle) {
        auto old = std::move(q.front());
        q.pop_front();
        unwatch(*old);
        boost::system::error_code ec;
        old->socket.close(ec);
    }
    ++conn->idle_generation;
    conn->pool_ = this;
    watch_later_.push(*conn);
    q.push_back(std::move(conn));
}

void UpstreamPool::watch(const std::shared_ptr<UpstreamConnection>& conn) {
    conn->socket.async_wait(
        boost::asio::socket_base::wait_read,
        [this, conn, gen = conn->idle_generation](boost::system::error_code ec) {
            if (ec == boost::asio::error::operation_aborted || conn->idle_generation != gen)
                return;  // taken for a request, or replaced
            // Readable while idle: the server closed it (or misbehaves).
            evict(conn);
        });
}

void UpstreamPool::evict(const std::shared_ptr<UpstreamConnection>& conn) {
    auto it = idle_.find(conn->server);
    if (it == idle_.end()) return;
    auto& q = it->second;
    auto pos = std::find(q.begin(), q.end(), conn);
    if (pos == q.end()) return;
    q.erase(pos);
    unwatch(*conn);
    ++evicted_;
    boost::system::error_code ec;
    conn->socket.close(ec);
}

void UpstreamPool::close_server(const UpstreamServer* server) {
    auto it = idle_.find(server);
    if (it == idle_.end()) return;
    for (auto& c : it->second) {
        unwatch(*c);
        boost::system::error_code ec;
        c->socket.close(ec);
    }
    idle_.erase(it);
}

void UpstreamPool::close_all() {
    for (auto& [server, q] : idle_)
        for (auto& c : q) {
            unwatch(*c);
            boost::system::error_code ec;
            c->socket.close(ec);
        }
    idle_.clear();
}

std::size_t UpstreamPool::idle_count() const {
    std::size_t n = 0;
    for (const auto& [server, q] : idle_) n += q.size();
    return n;
}

}  // namespace dsgw::upstream
