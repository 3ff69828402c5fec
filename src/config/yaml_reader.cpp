#include "yaml_reader.hpp"

#include <algorithm>
#include <cctype>

namespace dsgw::config::yaml {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Optimal string alignment distance: Levenshtein plus transposition of two
// neighbours ("frist" -> "first" is one edit).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

int line_of(const YAML::Node& n) {
    return n.Mark().line + 1;
}

// "line 3, again on line 7"; columns too when both are on one line (flow style).
std::string where(const YAML::Mark& first, const YAML::Mark& again) {
    auto line = [](const YAML::Mark& m) { return "line " + std::to_string(m.line + 1); };
    if (first.line != again.line) return line(first) + ", again on " + line(again);
    auto col = [&](const YAML::Mark& m) {
        return line(m) + ", column " + std::to_string(m.column + 1);
    };
    return col(first) + "; again on " + col(again);
}

}  // namespace

std::string Diagnostics::line(std::string_view path, std::string_view reason) const {
    return (path.empty() ? source_ : std::string(path)) + ": " + std::string(reason);
}

void Diagnostics::error(std::string_view path, std::string_view reason) {
    errors.push_back(line(path, reason));
}

void Diagnostics::warning(std::string_view path, std::string_view reason) {
    warnings.push_back(line(path, reason));
}

std::string join(std::span<const std::string> items) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += ", ";
        out += s;
    }
    return out;
}

std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string> candidates) {
    // One edit for short words, up to three for long ones: close enough to be
    // a typo, far enough apart not to suggest nonsense.
    std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
    auto w = lower(word);
    std::optional<std::string> best;
    std::size_t best_distance = limit + 1;
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(w, lower(c));
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

std::string format_size(std::uint64_t bytes) {
    constexpr std::uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
    if (bytes != 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
    if (bytes != 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
    if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
    return std::to_string(bytes) + " bytes";
}

// --- Node ------------------------------------------------------------------

Node::Node(YAML::Node node, std::string path, Diagnostics& diag)
    : node_(std::move(node)), path_(std::move(path)), diag_(&diag) {}

std::string Node::child_path(std::string_view key) const {
    if (path_.empty()) return std::string(key);
    return path_ + "." + std::string(key);
}

void Node::error(std::string_view reason) const {
    diag_->error(path_, reason);
}
void Node::warning(std::string_view reason) const {
    diag_->warning(path_, reason);
}

std::string Node::describe() const {
    if (is_null()) return "an empty value";
    if (node_.IsMap()) return "a mapping";
    if (node_.IsSequence()) return "a list";
    return "\"" + node_.Scalar() + "\"";
}

void Node::type_error(std::string_view expected) const {
    error("expected " + std::string(expected) + " (got " + describe() + ")");
}

void Node::enum_error(const std::string& got, std::span<const std::string> names) const {
    std::string reason = "must be one of " + join(names) + " (got \"" + got + "\")";
    if (auto m = closest_match(got, names)) reason += "; did you mean \"" + *m + "\"?";
    error(reason);
}

std::optional<std::string> Node::as_string() const {
    if (!node_.IsScalar()) {
        type_error("a string");
        return std::nullopt;
    }
    return node_.Scalar();
}

std::optional<std::uint64_t> Node::as_unsigned(std::uint64_t min, std::uint64_t max) const {
    auto range = std::to_string(min) + "-" + std::to_string(max);
    if (!node_.IsScalar()) {
        type_error("an integer " + range);
        return std::nullopt;
    }
    const auto& s = node_.Scalar();
    bool digits = !s.empty() && s.size() <= 19 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
        // A long run of digits is a number, just a large one.
        bool long_number = !s.empty() && std::all_of(s.begin(), s.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
        if (long_number)
            error("must be " + range + " (got " + s + ")");
        else
            type_error("an integer " + range);
        return std::nullopt;
    }
    std::uint64_t v = std::stoull(s);
    if (v < min || v > max) {
        error("must be " + range + " (got " + s + ")");
        return std::nullopt;
    }
    return v;
}

std::optional<bool> Node::as_bool() const {
    if (node_.IsScalar()) {
        const auto& s = node_.Scalar();
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    type_error("true or false");
    return std::nullopt;
}

std::optional<Duration> Node::as_duration(bool zero_ok) const {
    if (!node_.IsScalar()) {
        type_error("a duration such as \"5s\"");
        return std::nullopt;
    }
    Duration d{};
    std::string why;
    if (!parse_duration(node_.Scalar(), d, why)) {
        error(why);
        return std::nullopt;
    }
    if (!zero_ok && d.count() == 0) {
        error("must be greater than 0 (got \"" + node_.Scalar() + "\")");
        return std::nullopt;
    }
    return d;
}

std::optional<std::uint64_t> Node::as_size(std::uint64_t min, std::uint64_t max) const {
    if (!node_.IsScalar()) {
        type_error("a size such as \"16KiB\"");
        return std::nullopt;
    }
    std::uint64_t v = 0;
    std::string why;
    if (!parse_size(node_.Scalar(), v, why)) {
        error(why);
        return std::nullopt;
    }
    if (v < min || v > max) {
        error("must be " + format_size(min) + " to " + format_size(max) + " (got \"" +
              node_.Scalar() + "\")");
        return std::nullopt;
    }
    return v;
}

std::optional<std::vector<Node>> Node::as_list() const {
    if (!node_.IsSequence()) {
        type_error("a list");
        return std::nullopt;
    }
    std::vector<Node> out;
    std::size_t i = 0;
    for (const auto& item : node_) {
        out.emplace_back(item, path_ + "[" + std::to_string(i) + "]", *diag_);
        ++i;
    }
    return out;
}

std::optional<Map> Node::as_map() const {
    if (!node_.IsMap()) {
        type_error("a mapping");
        return std::nullopt;
    }
    return Map(*this);
}

// --- Map -------------------------------------------------------------------

Map::Map(const Node& node) : node_(node) {
    for (auto it = node.raw().begin(); it != node.raw().end(); ++it) {
        if (!it->first.IsScalar()) {
            node_.error("keys must be plain strings (line " + std::to_string(line_of(it->first)) +
                        ")");
            continue;
        }
        const auto& key = it->first.Scalar();
        if (const Entry* first = find(key)) {
            node_.diagnostics().error(
                node_.child_path(key),
                "duplicate key (first on " + where(first->mark, it->first.Mark()) + ")");
            continue;
        }
        entries_.push_back(Entry{key, Node(it->second, node_.child_path(key), node_.diagnostics()),
                                 it->first.Mark()});
    }
}

const Map::Entry* Map::find(std::string_view key) const {
    for (const auto& e : entries_)
        if (e.key == key) return &e;
    return nullptr;
}

void Map::mark_known(std::string_view key) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
}

std::optional<Node> Map::get(std::string_view key) {
    mark_known(key);
    if (const Entry* e = find(key)) return e->value;
    return std::nullopt;
}

std::optional<Node> Map::require(std::string_view key) {
    auto n = get(key);
    if (!n) node_.diagnostics().error(node_.child_path(key), "required");
    return n;
}

void Map::not_supported(std::string_view key) {
    mark_known(key);
    if (find(key)) node_.diagnostics().error(node_.child_path(key), "not supported yet");
}

void Map::read(std::string_view key, std::string& out) {
    if (auto n = get(key))
        if (auto v = n->as_string()) out = *v;
}

void Map::read(std::string_view key, bool& out) {
    if (auto n = get(key))
        if (auto v = n->as_bool()) out = *v;
}

void Map::read(std::string_view key, unsigned& out, unsigned min, unsigned max) {
    if (auto n = get(key))
        if (auto v = n->as_unsigned(min, max)) out = static_cast<unsigned>(*v);
}

void Map::read(std::string_view key, std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
    if (auto n = get(key))
        if (auto v = n->as_unsigned(min, max)) out = *v;
}

void Map::read_size(std::string_view key, std::uint64_t& out, std::uint64_t min,
                    std::uint64_t max) {
    if (auto n = get(key))
        if (auto v = n->as_size(min, max)) out = *v;
}

void Map::read_duration(std::string_view key, Duration& out, bool zero_ok) {
    if (auto n = get(key))
        if (auto v = n->as_duration(zero_ok)) out = *v;
}

void Map::finish() {
    for (const auto& e : entries_) {
        if (std::find(known_.begin(), known_.end(), e.key) != known_.end()) continue;
        std::string reason = "unknown key";
        if (auto m = closest_match(e.key, known_))
            reason += " (did you mean \"" + *m + "\"?)";
        else
            reason += " (expected one of: " + join(known_) + ")";
        e.value.error(reason);
    }
}

}  // namespace dsgw::config::yaml
