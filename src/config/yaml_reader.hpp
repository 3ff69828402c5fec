#pragma once
// A path-carrying view of a parsed YAML document, after userver's yaml_config:
// every node knows its full key path (`upstreams[0].servers[2].address`), each
// conversion to a C++ value goes through one typed getter, and a mapping
// reports every key the schema did not ask for. Nothing here throws or stops
// at the first mistake: errors are collected as "PATH: reason" lines, so
// --check-config can show all of them at once.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "deepseek_gateway/config/config.hpp"

namespace dsgw::config::yaml {

// Where the "PATH: reason" lines go. An error about the document as a whole
// (empty path) is named after the file.
class Diagnostics {
  public:
    explicit Diagnostics(std::string source) : source_(std::move(source)) {}

    void error(std::string_view path, std::string_view reason);
    void warning(std::string_view path, std::string_view reason);

    std::vector<std::string> errors;
    std::vector<std::string> warnings;

  private:
    std::string line(std::string_view path, std::string_view reason) const;

    std::string source_;
};

// The candidate closest to `word` by edit distance, when it is close enough to
// be a plausible typo ("acess" -> "access"); nothing otherwise.
std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string> candidates);

// "a, b, c".
std::string join(std::span<const std::string> items);

// "16KiB", "32MiB", "1000 bytes": a size as an operator would write it.
std::string format_size(std::uint64_t bytes);

// One name of an enumeration as written in YAML.
template <class E>
struct EnumName {
    std::string_view name;
    E value;
};

class Map;

class Node {
  public:
    Node(YAML::Node node, std::string path, Diagnostics& diag);

    const std::string& path() const { return path_; }
    std::string child_path(std::string_view key) const;
    const YAML::Node& raw() const { return node_; }
    Diagnostics& diagnostics() const { return *diag_; }
    bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }
    bool is_scalar() const { return node_.IsScalar(); }

    void error(std::string_view reason) const;
    void warning(std::string_view reason) const;

    // How the value looks, for "(got ...)": `"abc"`, `a list`, `nothing`.
    std::string describe() const;

    // Typed getters: the value, or nothing after recording why not.
    std::optional<std::string> as_string() const;
    std::optional<std::uint64_t> as_unsigned(std::uint64_t min, std::uint64_t max) const;
    std::optional<bool> as_bool() const;
    // zero_ok: false where a zero duration makes no sense (a timeout).
    std::optional<Duration> as_duration(bool zero_ok) const;
    std::optional<std::uint64_t> as_size(std::uint64_t min, std::uint64_t max) const;
    std::optional<std::vector<Node>> as_list() const;
    std::optional<Map> as_map() const;

    template <class E, std::size_t N>
    std::optional<E> as_enum(const EnumName<E> (&names)[N]) const {
        auto text = as_string();
        if (!text) return std::nullopt;
        std::vector<std::string> written;
        for (const auto& n : names) {
            if (n.name == *text) return n.value;
            written.emplace_back(n.name);
        }
        enum_error(*text, written);
        return std::nullopt;
    }

  private:
    void type_error(std::string_view expected) const;
    void enum_error(const std::string& got, std::span<const std::string> names) const;

    YAML::Node node_;
    std::string path_;
    Diagnostics* diag_;
};

// A mapping whose keys are checked against the schema. Every key the loader
// reads through get/require/not_supported is "known"; finish() reports the
// others as unknown, with a did-you-mean when one of the known keys is close.
// Duplicate keys and non-string keys are reported when the Map is built.
class Map {
  public:
    // `node` must be a mapping; Node::as_map() checks that.
    explicit Map(const Node& node);

    const Node& node() const { return node_; }
    const std::string& path() const { return node_.path(); }
    std::string child_path(std::string_view key) const { return node_.child_path(key); }

    // The value under `key`, or nothing when the key is absent.
    std::optional<Node> get(std::string_view key);
    // As get(), but an absent key is the error "PATH.key: required".
    std::optional<Node> require(std::string_view key);
    // A key of a later feature: recognised, and an error when present.
    void not_supported(std::string_view key);

    // Assign `out` only when the key is present and its value valid; keep the
    // default otherwise.
    void read(std::string_view key, std::string& out);
    void read(std::string_view key, bool& out);
    void read(std::string_view key, unsigned& out, unsigned min, unsigned max);
    void read(std::string_view key, std::uint64_t& out, std::uint64_t min, std::uint64_t max);
    void read_size(std::string_view key, std::uint64_t& out, std::uint64_t min, std::uint64_t max);
    void read_duration(std::string_view key, Duration& out, bool zero_ok);
    template <class E, std::size_t N>
    void read(std::string_view key, E& out, const EnumName<E> (&names)[N]) {
        if (auto n = get(key))
            if (auto v = n->as_enum(names)) out = *v;
    }

    // Reports every key that was never asked for. Call once, after reading.
    void finish();

  private:
    struct Entry {
        std::string key;
        Node value;
        YAML::Mark mark;  // of the key
    };
    const Entry* find(std::string_view key) const;
    void mark_known(std::string_view key);

    Node node_;
    std::vector<Entry> entries_;
    std::vector<std::string> known_;
};

}  // namespace dsgw::config::yaml
