#include "deepseek_gateway/proxy/head.hpp"

#include <cstring>

namespace dsgw::proxy {

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
}

// Bytes [at, at + n) of s as a little-endian word, n <= 8.
template <std::size_t n>
std::uint64_t word(const char* s, std::size_t at) {
    std::uint64_t w = 0;
    std::memcpy(&w, s + at, n);
    return w;
}

// 0x20 in each of the first n bytes.
template <std::size_t n>
constexpr std::uint64_t case_bits() {
    std::uint64_t m = 0;
    for (std::size_t i = 0; i < n; ++i) m |= std::uint64_t{0x20} << (8 * i);
    return m;
}

// `name` (a token, as the parser gives it) equals `lowercase`, ASCII case
// aside, compared 8 bytes at a time. In a token only letters change under
// | 0x20, and the names below are letters and '-' (which 0x20 leaves as it
// is), so setting the bit is an exact case fold here.
template <std::size_t N>
bool is(std::string_view name, const char (&lowercase)[N]) {
    constexpr std::size_t n = N - 1;
    const char* s = name.data();
    if constexpr (n <= 8) {
        return (word<n>(s, 0) | case_bits<n>()) == word<n>(lowercase, 0);
    } else {
        constexpr std::uint64_t all = case_bits<8>();
        for (std::size_t at = 0; at + 8 <= n; at += 8)
            if ((word<8>(s, at) | all) != word<8>(lowercase, at)) return false;
        return (word<8>(s, n - 8) | all) == word<8>(lowercase, n - 8);
    }
}

}  // namespace

Known classify(std::string_view name) {
    // By length first: most names are compared with nothing.
    switch (name.size()) {
        case 2:
            if (is(name, "te")) return Known::te;
            break;
        case 3:
            if (is(name, "via")) return Known::via;
            break;
        case 4:
            if (is(name, "host")) return Known::host;
            break;
        case 6:
            if (is(name, "expect")) return Known::expect;
            break;
        case 7:
            if (is(name, "trailer")) return Known::trailer;
            if (is(name, "upgrade")) return Known::upgrade;
            break;
        case 10:
            if (is(name, "connection")) return Known::connection;
            if (is(name, "keep-alive")) return Known::keep_alive;
            break;
        case 12:
            if (is(name, "content-type")) return Known::content_type;
            break;
        case 13:
            if (is(name, "authorization")) return Known::authorization;
            break;
        case 14:
            if (is(name, "content-length")) return Known::content_length;
            break;
        case 15:
            if (is(name, "x-forwarded-for")) return Known::x_forwarded_for;
            break;
        case 16:
            if (is(name, "proxy-connection")) return Known::proxy_connection;
            if (is(name, "x-forwarded-host")) return Known::x_forwarded_host;
            break;
        case 17:
            if (is(name, "transfer-encoding")) return Known::transfer_encoding;
            if (is(name, "x-forwarded-proto")) return Known::x_forwarded_proto;
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
