#include "deepseek_gateway/llm/models_list.hpp"

#include "deepseek_gateway/config/routes.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include <algorithm>

namespace dsgw::llm {

namespace {

// Order of first appearance, no duplicates: the lists are a few dozen names,
// a linear search is cheaper than a set.
void add(std::vector<std::string>& ids, const std::string& id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

bool any_glob_matches(const config::RouteConfig& route, const std::string& name) {
    if (route.models.empty()) return true;  // a path-only route takes any model
    for (const auto& pattern : route.models)
        if (!config::is_literal_glob(pattern) && config::glob_match(pattern, name)) return true;
    return false;
}

void append_quoted(std::string& out, std::string_view s) {
    out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

void append_model(std::string& out, std::string_view id) {
    out += "{\"id\":";
    append_quoted(out, id);
    out += ",\"object\":\"model\",\"created\":0,\"owned_by\":\"deepseek-gateway\"}";
}

}  // namespace

std::vector<std::string> client_models(const config::ListenerConfig& lc,
                                       const std::function<ListedModels(std::size_t)>& listed) {
    std::vector<std::string> ids;
    for (const auto& route : lc.routes) {
        for (const auto& pattern : route.models)
            if (config::is_literal_glob(pattern)) add(ids, pattern);
        if (!route.rewrite_model.empty()) continue;
        if (auto names = listed(route.upstream_index))
            for (const auto& name : *names)
                if (any_glob_matches(route, name)) add(ids, name);
    }
    if (lc.has_upstream())
        if (auto names = listed(lc.upstream_index))
            for (const auto& name : *names) add(ids, name);
    return ids;
}

std::string models_list_body(const std::vector<std::string>& ids) {
    std::string out = "{\"object\":\"list\",\"data\":[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) out += ',';
        append_model(out, ids[i]);
    }
    out += "]}";
    return out;
}

std::string model_body(std::string_view id) {
    std::string out;
    append_model(out, id);
    return out;
}

}  // namespace dsgw::llm
