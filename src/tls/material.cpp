#include "deepseek_gateway/tls/material.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace dsgw::tls {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// Opens `file`, or explains why not in the operator's words.
std::unique_ptr<BIO, BioFree> open_file(const std::string& file, std::string& error) {
    std::ifstream probe(file);
    if (!probe) {
        error = "cannot read \"" + file + "\": " + std::strerror(errno);
        return nullptr;
    }
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(file.c_str(), "r"));
    if (!bio) error = "cannot read \"" + file + "\": " + openssl_error();
    return bio;
}

std::time_t to_time(const ASN1_TIME* t) {
    struct tm tm {};
    if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

std::vector<std::string> subject_alt_names(X509* cert) {
    std::vector<std::string> out;
    auto* names = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (!names) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type == GEN_DNS) {
            const auto* s = n->d.dNSName;
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             static_cast<std::size_t>(ASN1_STRING_length(s)));
        } else if (n->type == GEN_IPADD) {
            const auto* s = n->d.iPAddress;
            char buf[64] = {};
            if (ASN1_STRING_length(s) == 4) {
                const unsigned char* b = ASN1_STRING_get0_data(s);
                std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
                out.emplace_back(buf);
            }
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

std::string format_date(std::time_t t) {
    char buf[32];
    struct tm tm {};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

}  // namespace

PairCheck check_pair(const std::string& certificate_file, const std::string& key_file,
                     std::time_t now) {
    PairCheck r;
    std::string error;
    auto cert_bio = open_file(certificate_file, error);
    std::unique_ptr<X509, X509Free> cert;
    if (!cert_bio) {
        r.certificate_errors.push_back(error);
    } else {
        cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
        if (!cert)
            r.certificate_errors.push_back("\"" + certificate_file +
                               "\" holds no PEM certificate: " + openssl_error());
    }
    auto key_bio = open_file(key_file, error);
    std::unique_ptr<EVP_PKEY, PkeyFree> key;
    if (!key_bio) {
        r.key_errors.push_back(error);
    } else {
        key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
        if (!key)
            r.key_errors.push_back("\"" + key_file + "\" holds no PEM private key: " +
                               openssl_error());
    }
    if (cert) {
        r.not_after = to_time(X509_get0_notAfter(cert.get()));
        r.names = subject_alt_names(cert.get());
        if (r.not_after != 0 && r.not_after <= now)
            r.certificate_errors.push_back("certificate \"" + certificate_file + "\" expired on " +
                               format_date(r.not_after));
        else if (r.not_after != 0 && r.not_after - now < kExpiryWarningSeconds)
            r.warnings.push_back("certificate \"" + certificate_file + "\" expires on " +
                                 format_date(r.not_after) + ", in less than 14 days");
    }
    if (cert && key && X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        r.key_errors.push_back("private key \"" + key_file + "\" does not match certificate \"" +
                           certificate_file + "\"");
    }
    return r;
}

std::optional<std::string> check_ca_file(const std::string& file) {
    std::string error;
    auto bio = open_file(file, error);
    if (!bio) return error;
    int count = 0;
    while (true) {
        std::unique_ptr<X509, X509Free> c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!c) break;
        ++count;
    }
    ERR_clear_error();
    if (count == 0) return "\"" + file + "\" holds no PEM certificate";
    return std::nullopt;
}

}  // namespace dsgw::tls
