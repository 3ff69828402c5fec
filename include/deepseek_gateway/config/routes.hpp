#pragma once
// Which route of a listener a request takes (SPEC §8): shell globs against the
// JSON body's "model", a prefix against the path, the first fit wins. Runs on
// every routed request: no allocation in the common case.

#include "deepseek_gateway/config/config.hpp"

#include <string>
#include <string_view>

namespace dsgw::config {

// Shell glob match, as fnmatch(3) with flags 0: '*', '?', '[...]' (with '!'
// or '^', ranges and [:classes:]), '\\' escapes the next character; '/' and
// a leading '.' are not special. Bytes, not characters (the C locale).
// A glob without wildcards compares with ==, "prefix*" and "*suffix" without
// a copy; others go through fnmatch on NUL-terminated copies (on the stack up
// to 256 bytes each). A name holding a NUL byte matches those others never,
// as fnmatch could not see past it.
bool glob_match(std::string_view glob, std::string_view name);

// True when `glob` has none of '*', '?', '[', '\\': it matches exactly
// itself (the names /v1/models can list as they are).
bool is_literal_glob(std::string_view glob);

// The first route of `lc` whose match fits: the path prefix (when set; a
// plain string prefix of the path without its query) and, when the route has
// model globs, `model` (nullptr when the request has no model: such a
// request matches only routes without model globs). Returns its index, or -1
// when none fits.
int match_route(const ListenerConfig& lc, std::string_view path, const std::string* model);

// True when every request `later` matches is matched by `earlier` (so
// `later`, placed after it, is never used). Exact where cheap, conservative
// otherwise: false when unsure. Used for --check-config's warning.
bool route_shadows(const RouteConfig& earlier, const RouteConfig& later);

}  // namespace dsgw::config
