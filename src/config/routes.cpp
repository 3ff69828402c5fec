// The route matcher of SPEC §8 and the shadowing test behind its warning.

#include "deepseek_gateway/config/routes.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cstring>

namespace dsgw::config {

namespace {

constexpr std::string_view kWildcards = "*?[\\";

// `s` as a C string: in `stack` when it fits, else in `heap`.
const char* c_string(std::string_view s, char* stack, std::size_t capacity, std::string& heap) {
    if (s.size() < capacity) {
        std::memcpy(stack, s.data(), s.size());
        stack[s.size()] = '\0';
        return stack;
    }
    heap.assign(s);
    return heap.c_str();
}

bool fnmatch_copies(std::string_view glob, std::string_view name) {
    if (glob.find('\0') != std::string_view::npos || name.find('\0') != std::string_view::npos)
        return false;
    constexpr std::size_t kStack = 257;
    char glob_stack[kStack], name_stack[kStack];
    std::string glob_heap, name_heap;
    return ::fnmatch(c_string(glob, glob_stack, kStack, glob_heap),
                     c_string(name, name_stack, kStack, name_heap), 0) == 0;
}

bool path_fits(const RouteConfig& earlier, const RouteConfig& later) {
    return later.path.starts_with(earlier.path);  // an empty prefix fits every path
}

// Every name `later` matches is matched by `earlier`.
bool glob_covers(const std::string& earlier, const std::string& later) {
    return earlier == later || earlier == "*" ||
           (is_literal_glob(later) && glob_match(earlier, later));
}

}  // namespace

bool is_literal_glob(std::string_view glob) {
    return glob.find_first_of(kWildcards) == std::string_view::npos;
}

bool glob_match(std::string_view glob, std::string_view name) {
    const auto first = glob.find_first_of(kWildcards);
    if (first == std::string_view::npos) return glob == name;
    if (glob[first] == '*') {
        if (first + 1 == glob.size()) return name.starts_with(glob.substr(0, first));
        if (first == 0 && is_literal_glob(glob.substr(1))) return name.ends_with(glob.substr(1));
    }
    return fnmatch_copies(glob, name);
}

int match_route(const ListenerConfig& lc, std::string_view path, const std::string* model) {
    for (std::size_t i = 0; i < lc.routes.size(); ++i) {
        const RouteConfig& r = lc.routes[i];
        if (!path.starts_with(r.path)) continue;
        if (!r.models.empty()) {
            if (model == nullptr) continue;
            const bool any =
                std::any_of(r.models.begin(), r.models.end(),
                            [&](const std::string& g) { return glob_match(g, *model); });
            if (!any) continue;
        }
        return static_cast<int>(i);
    }
    return -1;
}

bool route_shadows(const RouteConfig& earlier, const RouteConfig& later) {
    if (!path_fits(earlier, later)) return false;
    if (earlier.models.empty()) return true;
    // `later` without globs also takes requests without a model, which
    // `earlier` (with globs) does not.
    if (later.models.empty()) return false;
    return std::all_of(later.models.begin(), later.models.end(), [&](const std::string& g) {
        return std::any_of(earlier.models.begin(), earlier.models.end(),
                           [&](const std::string& e) { return glob_covers(e, g); });
    });
}

}  // namespace dsgw::config
