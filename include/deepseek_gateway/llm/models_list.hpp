#pragma once
// What a listener with routes answers at GET /v1/models and
// GET /v1/models/{id} (SPEC §8): the model names a client of the listener
// may send, in OpenAI's list shape. Pure functions: the servers' own lists
// come in through `listed` (upstream/models.hpp fetches them).

#include "deepseek_gateway/config/config.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsgw::llm {

// One upstream's model ids as its servers list them (null: none known yet).
using ListedModels = std::shared_ptr<const std::vector<std::string>>;

// The model ids a client of `lc` may send, in order of first appearance,
// without duplicates. Route by route, in order: the glob-free names of its
// match.model (config::is_literal_glob()), then, for a route without rewrite_model,
// the names its upstream's servers list that one of its globs matches (every
// name when match.model is empty: such a route takes any model); then the
// names the default upstream's servers list. A route with rewrite_model
// adds only its glob-free names (its servers know the rewritten name, which
// a client does not send). `listed(i)` gives config->upstreams[i]'s list.
// Every name is offered whatever the client's API key (routes' api_keys).
std::vector<std::string> client_models(const config::ListenerConfig& lc,
                                       const std::function<ListedModels(std::size_t)>& listed);

// The JSON bodies: OpenAI's list shape,
// {"object":"list","data":[{"id":..,"object":"model","created":0,"owned_by":"deepseek-gateway"},...]},
// and one model object of that list.
std::string models_list_body(const std::vector<std::string>& ids);
std::string model_body(std::string_view id);

}  // namespace dsgw::llm
