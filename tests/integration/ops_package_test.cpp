// Packaging and deploy recipes (issue 6): the systemd unit passes
// `systemd-analyze verify` and carries the directives operators rely on;
// `cmake --install` lays the files out and keeps an existing configuration;
// the .deb lists the expected files, its conffiles and its library
// dependencies; the configurations shipped in deploy/ validate; the nftables
// rules parse.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace dsgw::it {
namespace {

namespace fs = std::filesystem;

const std::string kSource = DSGW_SOURCE_DIR;
const std::string kBuild = DSGW_BUILD_DIR;

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
        s.replace(p, from.size(), to);
    return s;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string t;
    for (const auto& l : lines) t += l + "\n";
    return t;
}

bool has_line(const std::vector<std::string>& lines, const std::string& wanted) {
    for (const auto& l : lines)
        if (l == wanted) return true;
    return false;
}

// CMAKE_INSTALL_PREFIX of the build the tests belong to.
std::string install_prefix() {
    std::istringstream cache(read_file(kBuild + "/CMakeCache.txt"));
    for (std::string line; std::getline(cache, line);)
        if (line.rfind("CMAKE_INSTALL_PREFIX:", 0) == 0) return line.substr(line.find('=') + 1);
    return "";
}

std::string find_tool(const std::string& name) {
    for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/usr/local/bin/"})
        if (fs::exists(std::string(dir) + name)) return std::string(dir) + name;
    return "";
}

// ---- the unit ----------------------------------------------------------------

TEST(SystemdUnit, HasTheDirectivesTheServiceNeeds) {
    const auto unit = read_file(kSource + "/deploy/systemd/deepseek-gateway.service");
    ASSERT_FALSE(unit.empty());
    std::vector<std::string> lines;
    std::istringstream in(unit);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    for (const char* want : {
             "Type=notify",
             "ExecStartPre=/usr/bin/deepseek-gateway --check-config --config "
             "/etc/deepseek-gateway/gateway.yaml",
             "ExecStart=/usr/bin/deepseek-gateway --config /etc/deepseek-gateway/gateway.yaml",
             "ExecReload=/bin/kill -HUP $MAINPID",
             "User=deepseek-gateway",
             "AmbientCapabilities=CAP_NET_BIND_SERVICE",
             "NoNewPrivileges=yes",
             "ProtectSystem=strict",
             "ProtectHome=yes",
             "PrivateTmp=yes",
             "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
             "LimitNOFILE=65536",
             "Restart=on-failure",
             "WatchdogSec=30s",
         })
        EXPECT_TRUE(has_line(lines, want)) << "missing: " << want;
    // The sysusers.d entry creates the user the unit runs as.
    const auto sysusers = read_file(kSource + "/deploy/systemd/deepseek-gateway.sysusers");
    EXPECT_NE(sysusers.find("\nu deepseek-gateway "), std::string::npos) << sysusers;
}

// `systemd-analyze verify` on `unit` (a file of deploy/systemd/), with the
// service next to it and the service's ExecStart pointing at this build. It
// exits 0 on directives it ignores, so any output counts as a failure too.
void expect_verify_clean(const std::string& unit) {
    const auto analyze = find_tool("systemd-analyze");
    ASSERT_FALSE(analyze.empty()) << "systemd-analyze not found: run scripts/install-deps.sh";
    TempDir dir;
    const auto service = read_file(kSource + "/deploy/systemd/deepseek-gateway.service");
    const auto text = read_file(kSource + "/deploy/systemd/" + unit);
    ASSERT_FALSE(service.empty());
    ASSERT_FALSE(text.empty()) << unit;
    dir.write("deepseek-gateway.service",
              replace_all(service, "/usr/bin/deepseek-gateway", gateway_bin()));
    const auto path = dir.write(unit, replace_all(text, "/usr/bin/deepseek-gateway", gateway_bin()));
    auto r = run_command(analyze, {"verify", path}, 60s);
    ASSERT_TRUE(r.exit_code.has_value()) << "systemd-analyze did not finish";
    EXPECT_EQ(*r.exit_code, 0) << r.err_text();
    EXPECT_TRUE(r.err.empty() && r.out.empty())
        << "systemd-analyze verify complained about " << unit << ":\n"
        << r.err_text() << joined(r.out);
}

TEST(SystemdUnit, PassesSystemdAnalyzeVerify) { expect_verify_clean("deepseek-gateway.service"); }

// The optional .socket unit (socket activation) next to the service it starts.
TEST(SystemdUnit, SocketUnitPassesSystemdAnalyzeVerify) {
    EXPECT_NE(read_file(kSource + "/deploy/systemd/deepseek-gateway.socket")
                  .find("Service=deepseek-gateway.service"),
              std::string::npos);
    expect_verify_clean("deepseek-gateway.socket");
}

// ---- cmake --install -----------------------------------------------------------

TEST(Install, LaysOutFilesAndKeepsAnExistingConfig) {
    const auto prefix = install_prefix();
    ASSERT_FALSE(prefix.empty());
    const std::string etc = prefix == "/usr" ? "/etc" : prefix + "/etc";
    TempDir stage;
    fs::create_directories(stage.path() + etc + "/deepseek-gateway");
    const std::string mine = "# edited by the operator\n";
    stage.write(etc.substr(1) + "/deepseek-gateway/gateway.yaml", mine);

    auto r = run_command("/usr/bin/env", {"DESTDIR=" + stage.path(), DSGW_CMAKE, "--install", kBuild},
                         120s);
    ASSERT_TRUE(r.exit_code.has_value());
    ASSERT_EQ(*r.exit_code, 0) << r.err_text() << joined(r.out);
    EXPECT_EQ(read_file(stage.path() + etc + "/deepseek-gateway/gateway.yaml"), mine)
        << "cmake --install overwrote an existing configuration";
    for (const std::string& f : {prefix + "/bin/deepseek-gateway",
                                 prefix + "/lib/systemd/system/deepseek-gateway.service",
                                 prefix + "/lib/sysusers.d/deepseek-gateway.conf",
                                 prefix + "/share/doc/deepseek-gateway/operations.md",
                                 prefix + "/share/doc/deepseek-gateway/deployment.md",
                                 prefix + "/share/doc/deepseek-gateway/gateway.example.yaml",
                                 prefix + "/share/doc/deepseek-gateway/deepseek-gateway.socket"})
        EXPECT_TRUE(fs::exists(stage.path() + f)) << "not installed: " << f;
    const auto unit = read_file(stage.path() + prefix + "/lib/systemd/system/deepseek-gateway.service");
    EXPECT_NE(unit.find("ExecStart=" + prefix + "/bin/deepseek-gateway --config " + etc +
                        "/deepseek-gateway/gateway.yaml"),
              std::string::npos)
        << "the installed unit does not point at the installed files:\n" << unit;

    // Into an empty tree, the sample becomes the configuration, and it is valid.
    TempDir fresh;
    r = run_command("/usr/bin/env", {"DESTDIR=" + fresh.path(), DSGW_CMAKE, "--install", kBuild},
                    120s);
    ASSERT_TRUE(r.exit_code.has_value() && *r.exit_code == 0) << r.err_text();
    const auto conf = fresh.path() + etc + "/deepseek-gateway/gateway.yaml";
    ASSERT_TRUE(fs::exists(conf));
    auto check = run_command(gateway_bin(), {"--check-config", "--config", conf});
    ASSERT_TRUE(check.exit_code.has_value());
    EXPECT_EQ(*check.exit_code, 0) << "the installed configuration does not validate:\n"
                                   << check.err_text();
}

// ---- the .deb ------------------------------------------------------------------

TEST(Package, DebHasFilesConffilesAndDependencies) {
    ASSERT_FALSE(find_tool("dpkg-deb").empty());
    ASSERT_FALSE(find_tool("dpkg-shlibdeps").empty()) << "dpkg-dev missing: run scripts/install-deps.sh";
    const auto prefix = install_prefix();
    const std::string etc = prefix == "/usr" ? "/etc" : prefix + "/etc";
    TempDir out;
    auto r = run_command(DSGW_CPACK, {"-G", "DEB", "--config", kBuild + "/CPackConfig.cmake", "-B",
                                      out.path()},
                         240s);
    ASSERT_TRUE(r.exit_code.has_value()) << "cpack did not finish";
    ASSERT_EQ(*r.exit_code, 0) << r.err_text() << joined(r.out);
    std::string deb;
    for (const auto& e : fs::directory_iterator(out.path()))
        if (e.path().extension() == ".deb") deb = e.path().string();
    ASSERT_FALSE(deb.empty()) << joined(r.out);

    auto contents = run_command("/usr/bin/dpkg-deb", {"-c", deb});
    ASSERT_TRUE(contents.exit_code && *contents.exit_code == 0) << contents.err_text();
    const auto listing = joined(contents.out);
    for (const std::string& f : {"." + prefix + "/bin/deepseek-gateway",
                                 "." + etc + "/deepseek-gateway/gateway.yaml",
                                 "." + prefix + "/lib/systemd/system/deepseek-gateway.service",
                                 "." + prefix + "/lib/sysusers.d/deepseek-gateway.conf",
                                 "." + prefix + "/share/doc/deepseek-gateway/operations.md",
                                 "." + prefix + "/share/doc/deepseek-gateway/README.md"})
        EXPECT_NE(listing.find(" " + f + "\n"), std::string::npos) << "not in the .deb: " << f
                                                                  << "\n" << listing;

    auto info = run_command("/usr/bin/dpkg-deb", {"-I", deb});
    ASSERT_TRUE(info.exit_code && *info.exit_code == 0) << info.err_text();
    const auto control = joined(info.out);
    for (const char* member : {"conffiles", "postinst", "prerm", "postrm"})
        EXPECT_NE(control.find(std::string(" ") + member + " "), std::string::npos)
            << "no " << member << " in the control archive:\n" << control;
    auto conffiles = run_command("/usr/bin/dpkg-deb", {"-I", deb, "conffiles"});
    ASSERT_TRUE(conffiles.exit_code && *conffiles.exit_code == 0) << conffiles.err_text();
    EXPECT_TRUE(has_line(conffiles.out, etc + "/deepseek-gateway/gateway.yaml"))
        << joined(conffiles.out);

    auto depends = run_command("/usr/bin/dpkg-deb", {"-f", deb, "Depends"});
    ASSERT_TRUE(depends.exit_code && *depends.exit_code == 0);
    const auto deps = joined(depends.out);
    for (const char* lib : {"libc6", "libssl3", "libsystemd0", "libyaml-cpp", "libstdc++6"})
        EXPECT_NE(deps.find(lib), std::string::npos) << "Depends lacks " << lib << ": " << deps;
}

// ---- deploy recipes ------------------------------------------------------------

// The text of the `gateway.yaml: |` block of a ConfigMap, de-indented.
std::string configmap_gateway_yaml(const std::string& manifest) {
    std::istringstream in(manifest);
    std::string out, line;
    std::size_t indent = 0;
    bool inside = false;
    while (std::getline(in, line)) {
        if (!inside) {
            auto pos = line.find("gateway.yaml: |");
            if (pos != std::string::npos) {
                inside = true;
                indent = pos + 2;
            }
            continue;
        }
        if (!line.empty() && line.find_first_not_of(' ') < indent) break;
        out += (line.size() > indent ? line.substr(indent) : "") + "\n";
    }
    return out;
}

RunResult check_config_text(const std::string& yaml) {
    TempDir dir;
    return run_command(gateway_bin(), {"--check-config", "--config", dir.write("g.yaml", yaml)});
}

TEST(DeployRecipes, KubernetesConfigMapValidates) {
    auto yaml = configmap_gateway_yaml(read_file(kSource + "/deploy/k8s/configmap.yaml"));
    ASSERT_NE(yaml.find("listeners:"), std::string::npos) << yaml;
    // The servers' names resolve only inside the cluster.
    for (int i = 0; i < 2; ++i) {
        const auto host = "deepseek-inference-" + std::to_string(i) +
                          ".deepseek-inference.llm.svc.cluster.local";
        ASSERT_NE(yaml.find(host), std::string::npos);
        yaml = replace_all(yaml, host, "127.0.0." + std::to_string(i + 1));
    }
    auto r = check_config_text(yaml);
    ASSERT_TRUE(r.exit_code.has_value());
    EXPECT_EQ(*r.exit_code, 0) << r.err_text() << yaml;
    // The probes use the admin port the Deployment names.
    const auto deployment = read_file(kSource + "/deploy/k8s/deployment.yaml");
    EXPECT_NE(yaml.find("address: 0.0.0.0:9100"), std::string::npos);
    EXPECT_NE(deployment.find("containerPort: 9100"), std::string::npos);
    EXPECT_NE(deployment.find("path: /readyz"), std::string::npos);
    EXPECT_NE(deployment.find("path: /healthz"), std::string::npos);
}

TEST(DeployRecipes, DockerImageConfigValidates) {
    auto r = run_command(gateway_bin(), {"--check-config", "--config",
                                         kSource + "/deploy/docker/gateway.yaml"});
    ASSERT_TRUE(r.exit_code.has_value());
    EXPECT_EQ(*r.exit_code, 0) << r.err_text();
}

TEST(DeployRecipes, NftablesRulesParse) {
    const auto nft = find_tool("nft");
    if (nft.empty()) GTEST_SKIP() << "nft not installed (apt-get install nftables)";
    for (const char* f : {"deepseek-gateway.nft", "inference-server.nft"}) {
        auto r = run_command(nft, {"-c", "-f", kSource + "/deploy/nftables/" + f});
        ASSERT_TRUE(r.exit_code.has_value());
        if (*r.exit_code != 0 && r.err_text().find("Operation not permitted") != std::string::npos)
            GTEST_SKIP() << "nft -c needs CAP_NET_ADMIN here";
        EXPECT_EQ(*r.exit_code, 0) << f << ":\n" << r.err_text();
    }
}

}  // namespace
}  // namespace dsgw::it
