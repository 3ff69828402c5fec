#include "deepseek_gateway/proxy/head.hpp"

namespace dsgw::proxy {

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
}

// `lowercase` is already lower case.
bool iequals_lower(std::string_view s, std::string_view lowercase) {
    if (s.size() != lowercase.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (lower(s[i]) != lowercase[i]) return false;
    return true;
}

}  // namespace

Known classify(std::string_view name) {
    // By length first: most names are compared with nothing.
    switch (name.size()) {
        case 2:
            if (iequals_lower(name, "te")) return Known::te;
            break;
        case 3:
            if (iequals_lower(name, "via")) return Known::via;
            break;
        case 4:
            if (iequals_lower(name, "host")) return Known::host;
            break;
        case 6:
            if (iequals_lower(name, "expect")) return Known::expect;
            break;
        case 7:
            if (iequals_lower(name, "trailer")) return Known::trailer;
            if (iequals_lower(name, "upgrade")) return Known::upgrade;
            break;
        case 10:
            if (iequals_lower(name, "connection")) return Known::connection;
            if (iequals_lower(name, "keep-alive")) return Known::keep_alive;
            break;
        case 13:
            if (iequals_lower(name, "authorization")) return Known::authorization;
            break;
        case 14:
            if (iequals_lower(name, "content-length")) return Known::content_length;
            break;
        case 15:
            if (iequals_lower(name, "x-forwarded-for")) return Known::x_forwarded_for;
            break;
        case 16:
            if (iequals_lower(name, "proxy-connection")) return Known::proxy_connection;
            if (iequals_lower(name, "x-forwarded-host")) return Known::x_forwarded_host;
            break;
        case 17:
            if (iequals_lower(name, "transfer-encoding")) return Known::transfer_encoding;
            if (iequals_lower(name, "x-forwarded-proto")) return Known::x_forwarded_proto;
            break;
        default:
            break;
    }
    return Known::other;
}

std::string_view Head::operator[](Known k) const {
    for (const auto& f : fields_)
        if (f.known == k) return f.value;
    return {};
}

std::size_t Head::count(Known k) const {
    std::size_t n = 0;
    for (const auto& f : fields_) n += f.known == k;
    return n;
}

std::string_view Head::value(std::string_view name) const {
    for (const auto& f : fields_) {
        if (f.name.size() != name.size()) continue;
        std::size_t i = 0;
        while (i < name.size() && lower(f.name[i]) == lower(name[i])) ++i;
        if (i == name.size()) return f.value;
    }
    return {};
}

}  // namespace dsgw::proxy
