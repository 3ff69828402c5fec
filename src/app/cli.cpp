#include "deepseek_gateway/app/cli.hpp"

#include "deepseek_gateway/app/app.hpp"
#include "deepseek_gateway/config/config.hpp"

#include <boost/version.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

namespace dsgw::app {

namespace {

constexpr const char* kDefaultConfig = "/etc/deepseek-gateway/gateway.yaml";

constexpr const char* kUsage =
    "usage:\n"
    "  deepseek-gateway [--config FILE]                 run (default FILE: %s)\n"
    "  deepseek-gateway --check-config [--config FILE]  validate, print every error\n"
    "  deepseek-gateway hash-key                        read an API key on stdin, print the\n"
    "                                                   line for the keys file\n"
    "  deepseek-gateway --version\n"
    "  deepseek-gateway --help\n";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "deepseek-gateway: %s\n", message.c_str());
    std::fprintf(stderr, kUsage, kDefaultConfig);
    return 2;
}

int print_version() {
    std::printf("deepseek-gateway %s (OpenSSL %s, Boost %d.%d.%d)\n", DSGW_VERSION,
                OpenSSL_version(OPENSSL_VERSION_STRING), BOOST_VERSION / 100000,
                BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100);
    return 0;
}

int hash_key() {
    std::string key((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    if (key.empty()) {
        std::fprintf(stderr, "deepseek-gateway hash-key: no key on standard input\n");
        return 2;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr)) {
        std::fprintf(stderr, "deepseek-gateway hash-key: SHA-256 failed\n");
        return 3;
    }
    std::string hex;
    static constexpr char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; ++i) {
        hex += digits[digest[i] >> 4];
        hex += digits[digest[i] & 0xF];
    }
    std::printf("- name: CHANGE-ME\n  sha256: %s\n", hex.c_str());
    return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
    std::string config_path = kDefaultConfig;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf(kUsage, kDefaultConfig);
            return 0;
        } else if (a == "--version") {
            return print_version();
        } else if (a == "hash-key" && i == 1 && argc == 2) {
            return hash_key();
        } else if (a == "--check-config") {
            check_only = true;
        } else if (a == "--config" || a == "-c") {
            if (i + 1 >= argc) return usage_error("--config needs a file name");
            config_path = argv[++i];
        } else if (a.rfind("--config=", 0) == 0) {
            config_path = std::string(a.substr(9));
        } else {
            return usage_error("unknown argument \"" + std::string(a) + "\"");
        }
    }

    auto loaded = config::load_config_file(config_path);
    for (const auto& w : loaded.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
        std::fprintf(stderr, "%s: %zu error%s\n", config_path.c_str(), loaded.errors.size(),
                     loaded.errors.size() == 1 ? "" : "s");
        return 1;
    }
    if (check_only) {
        std::fprintf(stderr, "%s: configuration is valid\n", config_path.c_str());
        return 0;
    }
    App app(config_path, loaded.config);
    return app.run();
}

}  // namespace dsgw::app
