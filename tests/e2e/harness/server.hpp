// TestServer: runs a real havend in a private temp dir on free loopback ports for e2e tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace haven::test {

// Result of running a helper binary (havenctl, havend --check-config) to completion.
struct RunResult {
    int exit_code = -1;  // exit status, or 128 + signal number when killed
    std::string out{};   // stdout
    std::string err{};   // stderr
};

struct ServerOptions {
    std::string domain = "localhost";
    // "section.key" -> TOML value literal; replaces the harness default or adds a key, e.g.
    // {"sasl.mechanisms", R"(["PLAIN"])"}, {"registration.enabled", "true"}. The section is
    // everything before the last dot, so "peersupport.rooms.max" lands in [peersupport.rooms].
    std::map<std::string, std::string> config{};
    // Appended verbatim after the generated tables, for what a key map cannot express
    // (arrays of tables and the like). It must not reopen a table the harness generates.
    std::string extra_toml{};
    bool direct_tls = true;  // allocate and configure a direct TLS (XEP-0368) port
    std::chrono::milliseconds start_timeout{10'000};
    std::chrono::milliseconds stop_timeout{10'000};
};

// TOML literal helpers for ServerOptions::config values.
std::string toml_string(std::string_view s);
std::string toml_array(std::initializer_list<std::string_view> items);

// Owns one havend process and its temp dir. The config is written on construction, so havenctl
// works before start(). Failures to set up or start throw std::runtime_error carrying the log
// tail. The destructor stops the process and removes the dir unless HAVEN_KEEP_TMP is set.
class TestServer {
public:
    explicit TestServer(ServerOptions options = {});
    ~TestServer();
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    // havenctl user add local@domain --role role --password-stdin; throws on failure.
    void add_user(std::string_view local, std::string_view password,
                  std::string_view role = "member");
    // havenctl --config <config> args...; stdin_data is written to its stdin.
    RunResult run_ctl(const std::vector<std::string>& args, std::string_view stdin_data = {}) const;
    // havend --config <config> --check-config.
    RunResult check_config() const;

    // Sets one "section.key" option and rewrites the config file (takes effect on next start).
    void set_config(std::string key, std::string value);

    // Spawns havend and waits until every configured listener accepts TCP connections.
    void start();
    // SIGTERM, wait up to stop_timeout, then SIGKILL. Returns the exit status (128 + signal
    // when killed), or -1 when no process was running.
    int stop();
    void kill9();
    // stop() then start(); returns stop()'s status.
    int restart();
    // True while the process is alive; reaps it (and records the status) once it has exited.
    bool running();
    // Waits up to timeout for the process to exit on its own; its status, or nullopt.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    std::optional<int> last_exit_status() const { return last_status_; }
    pid_t pid() const { return pid_; }

    std::string log_contents() const;
    std::string log_tail(std::size_t lines = 40) const;

    const std::string& domain() const { return options_.domain; }
    std::string jid(std::string_view local) const;  // local@domain
    std::uint16_t c2s_port() const { return c2s_port_; }
    std::uint16_t direct_tls_port() const { return direct_tls_port_; }  // 0 when disabled
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path data_dir() const { return dir_ / "data"; }
    std::filesystem::path config_path() const { return dir_ / "haven.toml"; }
    std::filesystem::path log_path() const { return dir_ / "havend.log"; }
    const std::filesystem::path& cert_path() const { return cert_; }
    const std::filesystem::path& key_path() const { return key_; }

private:
    void write_config() const;
    bool reap(bool block);

    ServerOptions options_;
    std::filesystem::path dir_;
    std::filesystem::path cert_;
    std::filesystem::path key_;
    std::string havend_;
    std::string havenctl_;
    std::uint16_t c2s_port_ = 0;
    std::uint16_t direct_tls_port_ = 0;
    pid_t pid_ = -1;
    int starts_ = 0;
    std::optional<int> last_status_;
};

// A free loopback TCP port (bind to port 0, read it back, close). Another process may take it
// before it is used; tests accept that small race in exchange for parallel runs.
std::uint16_t free_loopback_port();

}  // namespace haven::test
