// The harness's minimal JSON reader (see harness.hpp).

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "harness.hpp"

namespace dsgw::it {

// ---------------------------------------------------------------- JSON

namespace {

struct JsonReader {
    std::string_view s;
    std::size_t i = 0;
    int depth = 0;

    void ws() {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    }
    bool lit(std::string_view w) {
        if (s.substr(i, w.size()) != w) return false;
        i += w.size();
        return true;
    }
    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    bool hex4(unsigned& v) {
        if (i + 4 > s.size()) return false;
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s[i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<unsigned>(c - 'A' + 10);
            else
                return false;
        }
        return true;
    }
    bool string(std::string& out) {
        if (i >= s.size() || s[i] != '"') return false;
        ++i;
        while (i < s.size()) {
            char c = s[i++];
            if (c == '"') return true;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i >= s.size()) return false;
            char e = s[i++];
            switch (e) {
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    unsigned cp;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp < 0xDC00 && lit("\\u")) {
                        unsigned lo;
                        if (!hex4(lo)) return false;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default:
                    out += e;
            }
        }
        return false;
    }
    bool value(Json& v) {
        if (++depth > 64) return false;
        ws();
        if (i >= s.size()) return false;
        char c = s[i];
        bool ok = true;
        if (c == '{') {
            v.type = Json::Type::object;
            ++i;
            ws();
            if (i < s.size() && s[i] == '}') {
                ++i;
            } else {
                for (;;) {
                    ws();
                    std::string k;
                    Json item;
                    ws();
                    if (!string(k)) return false;
                    ws();
                    if (!lit(":") || !value(item)) return false;
                    v.obj.emplace_back(std::move(k), std::move(item));
                    ws();
                    if (lit(",")) continue;
                    if (lit("}")) break;
                    return false;
                }
            }
        } else if (c == '[') {
            v.type = Json::Type::array;
            ++i;
            ws();
            if (i < s.size() && s[i] == ']') {
                ++i;
            } else {
                for (;;) {
                    Json item;
                    if (!value(item)) return false;
                    v.arr.push_back(std::move(item));
                    ws();
                    if (lit(",")) continue;
                    if (lit("]")) break;
                    return false;
                }
            }
        } else if (c == '"') {
            v.type = Json::Type::string;
            ok = string(v.str);
        } else if (lit("true")) {
            v.type = Json::Type::boolean;
            v.b = true;
        } else if (lit("false")) {
            v.type = Json::Type::boolean;
        } else if (lit("null")) {
            v.type = Json::Type::null;
        } else {
            std::size_t start = i;
            while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) ||
                                    std::strchr("+-.eE", s[i]) != nullptr))
                ++i;
            if (i == start) return false;
            v.type = Json::Type::number;
            v.str = std::string(s.substr(start, i - start));
        }
        --depth;
        return ok;
    }
};

}  // namespace

const Json* Json::get(std::string_view key) const {
    for (const auto& [k, v] : obj)
        if (k == key) return &v;
    return nullptr;
}

std::int64_t Json::as_int(std::int64_t fallback) const {
    if (type != Type::number && type != Type::string) return fallback;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(str.c_str(), &end, 10);
    if (end == str.c_str() || errno != 0) return fallback;
    return v;
}

std::uint64_t Json::as_uint(std::uint64_t fallback) const {
    if (type != Type::number && type != Type::string) return fallback;
    std::string t = str;
    int base = 10;
    if (t.rfind("0x", 0) == 0 || t.rfind("0X", 0) == 0) {
        t = t.substr(2);
        base = 16;
    } else if (type == Type::string && t.find_first_of("abcdefABCDEF") != std::string::npos) {
        base = 16;
    }
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(t.c_str(), &end, base);
    if (end == t.c_str() || errno != 0) return fallback;
    return v;
}

double Json::as_double(double fallback) const {
    if (type != Type::number) return fallback;
    return std::strtod(str.c_str(), nullptr);
}

std::optional<Json> parse_json(std::string_view text) {
    JsonReader r{text};
    Json v;
    if (!r.value(v)) return std::nullopt;
    r.ws();
    if (r.i != text.size()) return std::nullopt;
    return v;
}

}  // namespace dsgw::it
