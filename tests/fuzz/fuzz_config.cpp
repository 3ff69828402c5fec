// load_config_string (config/config.hpp), the loader's whole path from YAML
// text to a checked Config, on any text. Checked: a result has a config or
// errors, never both or neither.
//
// The loader resolves host names and reads the files a configuration names
// (certificates, API keys). Here getaddrinfo is a stand-in that knows
// "localhost" only (no DNS wait per input), and inputs that could name a
// device or a special file (/dev, /proc, /sys, /run, or any backslash, which
// a YAML escape could use to spell one) are skipped: reading /dev/zero
// forever says nothing about the loader.

#include "deepseek_gateway/config/config.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

extern "C" int getaddrinfo(const char* node, const char*, const addrinfo*, addrinfo** res) {
    if (!node || std::strcmp(node, "localhost") != 0) return EAI_NONAME;
    auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_in)));
    auto* sin = reinterpret_cast<sockaddr_in*>(ai + 1);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ai->ai_family = AF_INET;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addrlen = sizeof(sockaddr_in);
    ai->ai_addr = reinterpret_cast<sockaddr*>(sin);
    *res = ai;
    return 0;
}
extern "C" void freeaddrinfo(addrinfo* ai) {
    std::free(ai);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (std::string_view bad : {"/dev", "/proc", "/sys", "/run", "\\"})
        if (text.find(bad) != std::string_view::npos) return 0;
    const auto r = dsgw::config::load_config_string(text, "fuzz.yaml");
    if ((r.config != nullptr) == !r.errors.empty()) {
        std::fprintf(stderr, "FINDING: config and errors disagree\n");
        __builtin_trap();
    }
    return 0;
}
