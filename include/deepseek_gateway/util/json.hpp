#pragma once
// Minimal JSON string escaping for the log lines we write by hand.

#include <string>
#include <string_view>

namespace dsgw::util {

// Appends `s` to `out` escaped for use inside a JSON string (no quotes added).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace dsgw::util
