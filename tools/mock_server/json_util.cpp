#include "json_util.hpp"

namespace mock {

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(u, 6);
        } else {
          out += ch;
        }
    }
  }
}

namespace {

bool hex4(std::string_view s, std::size_t at, unsigned& v) {
  if (at + 4 > s.size()) return false;
  v = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
    else return false;
  }
  return true;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

}  // namespace

bool json_unescape(std::string_view raw, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        unsigned cp = 0;
        if (!hex4(raw, i + 1, cp)) return false;
        i += 4;
        // A high surrogate followed by a low one is one code point; a lone
        // surrogate is kept as Python keeps it (WTF-8 style).
        unsigned lo = 0;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 2 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u' && hex4(raw, i + 3, lo) && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

namespace {

struct Scanner {
  const char* p;
  const char* end;
  int depth_budget = 512;

  void ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  // At '"': skip the string; on success sets [b, e) to its raw contents.
  bool string(const char*& b, const char*& e) {
    if (p >= end || *p != '"') return false;
    ++p;
    b = p;
    while (p < end) {
      char c = *p;
      if (c == '"') {
        e = p;
        ++p;
        return true;
      }
      if (c == '\\') {
        if (++p >= end) return false;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return false;
      }
      ++p;
    }
    return false;
  }
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end - p) < word.size() ||
        std::string_view(p, word.size()) != word)
      return false;
    p += word.size();
    return true;
  }
  bool number() {
    const char* b = p;
    if (p < end && *p == '-') ++p;
    while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                       *p == '+' || *p == '-'))
      ++p;
    return p > b && !(p == b + 1 && *b == '-');
  }
  bool value() {
    ws();
    if (p >= end) return false;
    const char* b;
    const char* e;
    switch (*p) {
      case '"': return string(b, e);
      case '{': return object(nullptr);
      case '[': return array();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }
  bool array() {
    if (--depth_budget < 0) return false;
    ++p;  // '['
    ws();
    if (p < end && *p == ']') {
      ++p;
      ++depth_budget;
      return true;
    }
    for (;;) {
      if (!value()) return false;
      ws();
      if (p >= end) return false;
      if (*p == ',') {
        ++p;
        continue;
      }
      if (*p == ']') {
        ++p;
        ++depth_budget;
        return true;
      }
      return false;
    }
  }
  // out != nullptr only for the top-level object, and for its
  // "stream_options" (options true).
  bool object(CompletionFields* out, bool options = false) {
    if (--depth_budget < 0) return false;
    ++p;  // '{'
    ws();
    if (p < end && *p == '}') {
      ++p;
      ++depth_budget;
      return true;
    }
    for (;;) {
      ws();
      const char* kb;
      const char* ke;
      if (!string(kb, ke)) return false;
      ws();
      if (p >= end || *p != ':') return false;
      ++p;
      ws();
      std::string_view key(kb, static_cast<std::size_t>(ke - kb));
      if (out && options) {
        if (key == "include_usage" && p < end && (*p == 't' || *p == 'f')) {
          out->include_usage = *p == 't';
          if (!literal(*p == 't' ? "true" : "false")) return false;
        } else if (!value()) {
          return false;
        }
      } else if (out && key == "stream_options" && p < end && *p == '{') {
        // A later "stream_options" replaces an earlier one, as in Python.
        out->include_usage = false;
        if (!object(out, true)) return false;
      } else if (out && key == "stream" && p < end && (*p == 't' || *p == 'f')) {
        if (literal("true")) {
          out->stream = true;
        } else if (literal("false")) {
          out->stream = false;
        } else {
          return false;
        }
      } else if (out && key == "model" && p < end && *p == '"') {
        const char* vb;
        const char* ve;
        if (!string(vb, ve)) return false;
        out->model = std::string_view(vb, static_cast<std::size_t>(ve - vb));
        out->model_given = true;
      } else if (!value()) {
        return false;
      }
      ws();
      if (p >= end) return false;
      if (*p == ',') {
        ++p;
        continue;
      }
      if (*p == '}') {
        ++p;
        ++depth_budget;
        return true;
      }
      return false;
    }
  }
};

}  // namespace

bool scan_completion_request(std::string_view body, CompletionFields& out) {
  Scanner s{body.data(), body.data() + body.size()};
  s.ws();
  if (s.p == s.end) return true;
  if (*s.p != '{') return false;
  if (!s.object(&out)) return false;
  s.ws();
  return s.p == s.end;
}

}  // namespace mock
