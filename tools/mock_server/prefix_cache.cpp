#include "prefix_cache.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "json_util.hpp"

namespace mock {

namespace json = boost::json;

namespace {

void append_text(std::string& out, const json::value& v) {
  if (const auto* s = v.if_string()) {
    out.append(s->data(), s->size());
  } else {
    out += json::serialize(v);
  }
}

void append_content(std::string& out, const json::value& content) {
  const auto* parts = content.if_array();
  if (!parts) {
    append_text(out, content);
    return;
  }
  for (const auto& part : *parts) {
    const auto* obj = part.if_object();
    const json::value* text = obj ? obj->if_contains("text") : nullptr;
    if (text && text->is_string()) out.append(text->get_string().data(), text->get_string().size());
  }
}

}  // namespace

void prompt_text(std::string_view body, bool chat, std::string& out) {
  out.clear();
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  const auto* req = ec ? nullptr : doc.if_object();
  if (!req) return;
  if (!chat) {
    if (const auto* prompt = req->if_contains("prompt")) append_text(out, *prompt);
    return;
  }
  if (const auto* tools = req->if_contains("tools"); tools && !tools->is_null())
    out += json::serialize(*tools);
  const auto* messages = req->if_contains("messages");
  if (!messages || !messages->is_array()) return;
  for (const auto& m : messages->get_array()) {
    const auto* msg = m.if_object();
    if (!msg) continue;
    if (const auto* role = msg->if_contains("role")) append_text(out, *role);
    if (const auto* content = msg->if_contains("content")) append_content(out, *content);
  }
}

PrefixCache::PrefixCache(std::uint64_t capacity_blocks, std::uint32_t block_bytes)
    : capacity_(capacity_blocks), block_bytes_(block_bytes) {}

std::uint64_t PrefixCache::lookup_and_insert(std::string_view prompt) {
  if (!enabled()) return 0;
  const std::size_t blocks = prompt.size() / block_bytes_;
  std::lock_guard lock(mu_);
  keys_.clear();
  std::uint64_t key = kFnvOffset;
  for (std::size_t i = 0; i < blocks; ++i) {
    // FNV-1a carried on from the previous block's key: the key of block i
    // is the hash of the whole prefix up to its end.
    key = fnv1a64(key, reinterpret_cast<const unsigned char*>(prompt.data()) + i * block_bytes_,
                  block_bytes_);
    keys_.push_back(key);
  }
  std::size_t hits = 0;
  while (hits < blocks && index_.count(keys_[hits])) ++hits;
  for (std::size_t i = blocks; i-- > 0;) {
    auto it = index_.find(keys_[i]);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      continue;
    }
    lru_.push_front(keys_[i]);
    index_.emplace(keys_[i], lru_.begin());
    if (lru_.size() > capacity_) {
      index_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  return static_cast<std::uint64_t>(hits) * block_bytes_;
}

void PrefixCache::clear() {
  std::lock_guard lock(mu_);
  lru_.clear();
  index_.clear();
}

std::uint64_t PrefixCache::size() {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace mock
