// Test certificates made with the openssl command line (see tls_certs.hpp).

#include "tls_certs.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace dsgw::it {

namespace {

constexpr const char* kOpenssl = "/usr/bin/openssl";

// The only configuration openssl sees (the system's openssl.cnf is not read),
// so the certificates do not depend on the machine. `ca` is for the expired
// certificate only: `openssl x509 -req` cannot back-date notAfter on 3.0.
std::string base_config(const std::string& dir) {
    return "[req]\n"
           "distinguished_name = dn\n"
           "prompt = no\n"
           "[dn]\n"
           "CN = unused\n"
           "[v3_ca]\n"
           "basicConstraints = critical,CA:TRUE\n"
           "keyUsage = critical,keyCertSign,cRLSign\n"
           "subjectKeyIdentifier = hash\n"
           "[ca]\n"
           "default_ca = testca\n"
           "[testca]\n"
           "database = " +
           dir +
           "/ca-index.txt\n"
           "new_certs_dir = " +
           dir +
           "/ca-issued\n"
           "serial = " +
           dir +
           "/ca-serial\n"
           "default_md = sha256\n"
           "policy = any_policy\n"
           "unique_subject = no\n"
           "copy_extensions = none\n"
           "[any_policy]\n"
           "commonName = supplied\n";
}

}  // namespace

std::string TestPki::read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

bool TestPki::openssl(const std::vector<std::string>& args) {
    RunResult r = run_command(kOpenssl, args, 60s);
    if (r.exit_code && *r.exit_code == 0) return true;
    if (error_.empty()) {
        error_ = "openssl";
        for (const auto& a : args) error_ += " " + a;
        error_ += " -> exit " + (r.exit_code ? std::to_string(*r.exit_code) : "timeout") + "\n" +
                  r.err_text();
    }
    return false;
}

bool TestPki::new_key(const std::string& path, bool rsa) {
    if (rsa)
        return openssl(
            {"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path});
    return openssl(
        {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
}

namespace {
// `-newkey` arguments: a fresh key, written unencrypted to `key`.
std::vector<std::string> newkey_args(const std::string& key, bool rsa) {
    if (rsa) return {"-newkey", "rsa:2048", "-nodes", "-keyout", key};
    return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key};
}
}  // namespace

bool TestPki::make_ca(const std::string& name, const std::string& cn, std::string& cert,
                      std::string& key) {
    key = dir() + "/" + name + ".key";
    cert = dir() + "/" + name + ".pem";
    std::vector<std::string> a = {"req", "-x509", "-new"};
    for (auto& x : newkey_args(key, false)) a.push_back(x);
    std::vector<std::string> rest = {"-subj", "/CN=" + cn,   "-days", "60",   "-sha256", "-config",
                                     cnf_,    "-extensions", "v3_ca", "-out", cert};
    a.insert(a.end(), rest.begin(), rest.end());
    return openssl(a);
}

// A config file for one leaf certificate: the [req] section openssl needs
// and the certificate's extensions in [v3_leaf].
std::string TestPki::write_ext(const std::string& name, const std::vector<std::string>& dns,
                               const std::vector<std::string>& ips, bool client_auth) {
    std::string san;
    for (const auto& d : dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (const auto& i : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
    std::string ext =
        "[req]\n"
        "distinguished_name = dn\n"
        "prompt = no\n"
        "[dn]\n"
        "CN = unused\n"
        "[v3_leaf]\n"
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n";
    ext += std::string("extendedKeyUsage = ") + (client_auth ? "clientAuth" : "serverAuth") + "\n";
    if (!san.empty()) ext += "subjectAltName = " + san + "\n";
    return dir_.write(name + ".cnf", ext);
}

std::optional<Cert> TestPki::issue(const std::string& name, const std::string& cn,
                                   const std::vector<std::string>& dns,
                                   const std::vector<std::string>& ips, int days,
                                   const std::string& serial, bool client_auth) {
    return issue_with(name, cn, dns, ips, days, serial, client_auth, false);
}

std::optional<Cert> TestPki::issue_with(const std::string& name, const std::string& cn,
                                        const std::vector<std::string>& dns,
                                        const std::vector<std::string>& ips, int days,
                                        const std::string& serial, bool client_auth, bool rsa) {
    Cert c;
    c.key = dir() + "/" + name + ".key";
    c.cert = dir() + "/" + name + ".pem";
    c.serial = serial;
    c.subject = "CN=" + cn;
    std::string cnf = write_ext(name, dns, ips, client_auth);
    // One command: new key, and a certificate for it signed by the CA
    // (`req -x509 -CA`, OpenSSL 3.0).
    std::vector<std::string> a = {"req", "-x509", "-new"};
    for (auto& x : newkey_args(c.key, rsa)) a.push_back(x);
    std::vector<std::string> rest = {"-subj",       "/CN=" + cn,
                                     "-CA",         ca,
                                     "-CAkey",      ca_key,
                                     "-set_serial", "0x" + serial,
                                     "-days",       std::to_string(days),
                                     "-sha256",     "-config",
                                     cnf,           "-extensions",
                                     "v3_leaf",     "-out",
                                     c.cert};
    a.insert(a.end(), rest.begin(), rest.end());
    if (!openssl(a)) return std::nullopt;
    return c;
}

std::string TestPki::copy(const std::string& from, const std::string& name) const {
    return dir_.write(name, read(from));
}

TestPki::TestPki() {
    if (dir().empty()) {
        error_ = "cannot create a temporary directory";
        return;
    }
    cnf_ = dir_.write("openssl.cnf", base_config(dir()));
    if (!make_ca("ca", "dsgw test CA", ca, ca_key)) return;
    std::string wrong_key;
    if (!make_ca("wrong-ca", "dsgw wrong CA", wrong_ca, wrong_key)) return;

    const std::vector<std::string> local_dns = {"localhost"};
    const std::vector<std::string> local_ip = {"127.0.0.1"};
    auto must = [&](std::optional<Cert> c, Cert& out) {
        if (c) out = std::move(*c);
        return c.has_value();
    };
    if (!must(issue("server", "localhost", local_dns, local_ip, 30, "1001"), server)) return;
    if (!must(issue("server-renewed", "localhost", local_dns, local_ip, 30, "1002"),
              server_renewed))
        return;

    // other.test: an RSA key, so both key types are exercised.
    if (!must(issue_with("other", "other.test", {"other.test"}, {}, 30, "1003", false, true),
              other))
        return;
    if (!must(issue("client", "dsgw test client", {}, {}, 30, "1004", true), client)) return;

    // Signed by the wrong CA: swap the signer for one certificate.
    {
        std::string keep_ca = ca, keep_key = ca_key;
        ca = wrong_ca;
        ca_key = wrong_key;
        bool made =
            must(issue("wrong-server", "localhost", local_dns, local_ip, 30, "1005"), wrong_server);
        ca = keep_ca;
        ca_key = keep_key;
        if (!made) return;
    }
    if (!must(issue("expiring", "localhost", local_dns, local_ip, 5, "1006"), expiring)) return;

    // Expired: `openssl ca` takes explicit start and end dates.
    {
        std::filesystem::create_directories(dir() + "/ca-issued");
        dir_.write("ca-index.txt", "");
        dir_.write("ca-serial", "2001\n");
        expired.key = dir() + "/expired.key";
        expired.cert = dir() + "/expired.pem";
        expired.serial = "2001";
        expired.subject = "CN=localhost";
        std::string csr = dir() + "/expired.csr";
        std::string cnf = write_ext("expired", local_dns, local_ip, false);
        std::vector<std::string> a = {"req", "-new"};
        for (auto& x : newkey_args(expired.key, false)) a.push_back(x);
        for (auto x : {"-subj", "/CN=localhost", "-config"}) a.push_back(x);
        a.push_back(cnf_);
        a.push_back("-out");
        a.push_back(csr);
        if (!openssl(a) || !openssl({"ca",          "-batch",
                                     "-config",     cnf_,
                                     "-cert",       ca,
                                     "-keyfile",    ca_key,
                                     "-in",         csr,
                                     "-startdate",  "20190101000000Z",
                                     "-enddate",    "20200101000000Z",
                                     "-extfile",    cnf,
                                     "-extensions", "v3_leaf",
                                     "-notext",     "-out",
                                     expired.cert}))
            return;
    }
    stray_key = dir() + "/stray.key";
    new_key(stray_key);
}

}  // namespace dsgw::it
