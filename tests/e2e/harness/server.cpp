// TestServer: temp dir, free ports, dev cert, config file and the havend/havenctl processes.
#include "e2e/harness/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace haven::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Owns a file descriptor so early returns and exceptions never leak one.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset(std::exchange(o.fd_, -1));
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("TestServer: " + what);
}

std::string errno_text(const char* call) {
    return std::string(call) + ": " + std::strerror(errno);
}

bool env_set(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0';
}

// Tests write to sockets and pipes whose peer may be gone; that must be an error, not a death.
void ignore_sigpipe_once() {
    static std::once_flag once;
    std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

fs::path make_temp_dir(const char* prefix) {
    const char* tmp = std::getenv("TMPDIR");
    fs::path base = (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
    std::string templ = (base / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) {
        fail(errno_text("mkdtemp") + " under " + base.string());
    }
    return fs::path(templ);
}

int decode_status(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

struct ChildFds {
    int in = -1;
    int out = -1;
    int err = -1;
};

// fork/exec with the given stdio. Everything the child needs is prepared before fork() because
// only async-signal-safe calls are allowed between fork and exec. Inherited descriptors are
// closed: a havend that kept a test client's socket open would hide that client's disconnect.
pid_t spawn(const std::vector<std::string>& args, ChildFds fds, bool die_with_parent) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();

    const pid_t pid = ::fork();
    if (pid < 0) {
        fail(errno_text("fork"));
    }
    if (pid > 0) {
        return pid;
    }
    // Child.
    if (die_with_parent) {
        // A test binary killed by ctest's timeout must not leave havend holding its ports.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(127);
        }
    }
    if (fds.in >= 0) {
        ::dup2(fds.in, STDIN_FILENO);
    }
    if (fds.out >= 0) {
        ::dup2(fds.out, STDOUT_FILENO);
    }
    if (fds.err >= 0) {
        ::dup2(fds.err, STDERR_FILENO);
    }
    if (::close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 4096; ++fd) {
            ::close(fd);
        }
    }
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
}

Fd open_dev_null(int flags) {
    Fd fd(::open("/dev/null", flags | O_CLOEXEC));
    if (!fd) {
        fail(errno_text("open /dev/null"));
    }
    return fd;
}

std::pair<Fd, Fd> make_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        fail(errno_text("pipe2"));
    }
    return {Fd(p[0]), Fd(p[1])};
}

// Runs a command to completion, feeding stdin and collecting stdout/stderr; bounded by timeout
// (then SIGKILL) so a wedged havenctl fails the test instead of hanging it.
RunResult run_capture(const std::vector<std::string>& args, std::string_view stdin_data,
                      std::chrono::milliseconds timeout = 60s) {
    ignore_sigpipe_once();
    auto [in_r, in_w] = make_pipe();
    auto [out_r, out_w] = make_pipe();
    auto [err_r, err_w] = make_pipe();
    const pid_t pid = spawn(args, {in_r.get(), out_w.get(), err_w.get()}, true);
    in_r.reset();
    out_w.reset();
    err_w.reset();
    for (const Fd* fd : {&in_w, &out_r, &err_r}) {
        ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
    }

    RunResult result;
    std::size_t written = 0;
    if (stdin_data.empty()) {
        in_w.reset();
    }
    const auto deadline = Clock::now() + timeout;
    bool timed_out = false;
    while (out_r || err_r) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= 0ms) {
            timed_out = true;
            break;
        }
        pollfd pfds[3];
        nfds_t n = 0;
        if (in_w) {
            pfds[n++] = {in_w.get(), POLLOUT, 0};
        }
        if (out_r) {
            pfds[n++] = {out_r.get(), POLLIN, 0};
        }
        if (err_r) {
            pfds[n++] = {err_r.get(), POLLIN, 0};
        }
        if (::poll(pfds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            fail(errno_text("poll"));
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (pfds[i].revents == 0) {
                continue;
            }
            if (in_w && pfds[i].fd == in_w.get()) {
                const ssize_t w =
                    ::write(in_w.get(), stdin_data.data() + written, stdin_data.size() - written);
                if (w > 0) {
                    written += static_cast<std::size_t>(w);
                }
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
                    in_w.reset();  // EOF tells the child the password is complete
                }
                continue;
            }
            Fd& src = (out_r && pfds[i].fd == out_r.get()) ? out_r : err_r;
            std::string& dst = (&src == &out_r) ? result.out : result.err;
            char buf[4096];
            const ssize_t r = ::read(src.get(), buf, sizeof buf);
            if (r > 0) {
                dst.append(buf, static_cast<std::size_t>(r));
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                src.reset();
            }
        }
    }
    if (timed_out) {
        ::kill(pid, SIGKILL);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = decode_status(status);
    if (timed_out) {
        result.err += "\n[harness] killed after " + std::to_string(timeout.count()) + " ms";
    }
    return result;
}

// One dev certificate per test process: minting is the slowest part of server setup and every
// TestServer can share it. The directory goes away at process exit.
struct DevCert {
    fs::path dir;
    fs::path cert;
    fs::path key;

    DevCert() {
        dir = make_temp_dir("haven-e2e-cert-");
        cert = dir / "localhost.crt";
        key = dir / "localhost.key";
        const char* src = std::getenv("HAVEN_SOURCE_DIR");
        RunResult r;
        if (src != nullptr && fs::exists(fs::path(src) / "certs" / "make-dev-cert.sh")) {
            r = run_capture({"bash", (fs::path(src) / "certs" / "make-dev-cert.sh").string(),
                             dir.string(), "localhost"},
                            {});
        } else {
            r = run_capture(
                {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "30", "-subj", "/CN=localhost", "-addext",
                 "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key.string(), "-out",
                 cert.string()},
                {});
        }
        if (r.exit_code != 0 || !fs::exists(cert) || !fs::exists(key)) {
            fail("minting the dev certificate failed: " + r.err + r.out);
        }
    }
    ~DevCert() {
        if (!env_set("HAVEN_KEEP_TMP")) {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    }
    DevCert(const DevCert&) = delete;
    DevCert& operator=(const DevCert&) = delete;
};

const DevCert& dev_cert() {
    static const DevCert cert;
    return cert;
}

std::string binary_from_env(const char* var, const char* name) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
        return v;
    }
    if (const char* src = std::getenv("HAVEN_SOURCE_DIR"); src != nullptr && *src != '\0') {
        fs::path p = fs::path(src) / "build" / name;
        if (fs::exists(p)) {
            return p.string();
        }
    }
    fail(std::string(var) + " is not set (ctest sets it; when running by hand export " + var +
         "=build/" + name + ")");
}

bool port_accepts(std::uint16_t port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) {
        return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::pair<std::string, std::string> split_key(const std::string& dotted) {
    const auto dot = dotted.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == dotted.size()) {
        fail("config key '" + dotted + "' must be section.key");
    }
    return {dotted.substr(0, dot), dotted.substr(dot + 1)};
}

}  // namespace

std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string toml_array(std::initializer_list<std::string_view> items) {
    std::string out = "[";
    for (const auto& item : items) {
        if (out.size() > 1) {
            out += ", ";
        }
        out += toml_string(item);
    }
    return out + "]";
}

std::uint16_t free_loopback_port() {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) {
        fail(errno_text("socket"));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        fail(errno_text("bind/getsockname"));
    }
    return ntohs(addr.sin_port);
}

TestServer::TestServer(ServerOptions options) : options_(std::move(options)) {
    ignore_sigpipe_once();
    havend_ = binary_from_env("HAVEND", "havend");
    havenctl_ = binary_from_env("HAVENCTL", "havenctl");
    const DevCert& dc = dev_cert();
    cert_ = dc.cert;
    key_ = dc.key;
    dir_ = make_temp_dir("haven-e2e-");
    fs::create_directories(data_dir());
    c2s_port_ = free_loopback_port();
    if (options_.direct_tls) {
        do {
            direct_tls_port_ = free_loopback_port();
        } while (direct_tls_port_ == c2s_port_);
    }
    write_config();
}

TestServer::~TestServer() {
    try {
        if (pid_ > 0) {
            const int status = stop();
            // A crash or hang at shutdown is a bug the test may not check; make it visible.
            if (status != 0) {
                std::cerr << "[harness] havend exited with status " << status
                          << " at teardown; log tail:\n"
                          << log_tail() << "\n";
            }
        }
        if (env_set("HAVEN_TEST_VERBOSE")) {
            std::cerr << "[harness] havend log (" << log_path().string() << "):\n"
                      << log_contents() << "\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "[harness] teardown: " << e.what() << "\n";
    }
    if (env_set("HAVEN_KEEP_TMP")) {
        std::cerr << "[harness] kept " << dir_.string() << "\n";
    } else {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
}

void TestServer::write_config() const {
    // Harness defaults, in file order. Core keys are spelled out so a change to a server default
    // does not silently change what the e2e tests exercise. Module options (offline.quota,
    // peersupport.*) are left out: havend rejects sections of modules it was built without, so
    // tests that rely on one set it through ServerOptions::config.
    struct Entry {
        std::string section;
        std::string key;
        std::string value;
    };
    std::vector<Entry> entries = {
        {"server", "domain", toml_string(options_.domain)},
        {"server", "data_dir", toml_string(data_dir().string())},
        {"tls", "cert", toml_string(cert_.string())},
        {"tls", "key", toml_string(key_.string())},
        {"c2s", "address", toml_string("127.0.0.1")},
        {"c2s", "port", std::to_string(c2s_port_)},
        {"c2s", "direct_tls_port", std::to_string(direct_tls_port_)},
        {"c2s", "require_encryption", "true"},
        {"sasl", "scram_iterations", "4096"},
        {"limits", "max_stanza_bytes", "262144"},
        {"limits", "max_stanza_bytes_unauthenticated", "8192"},
        {"limits", "unauthenticated_timeout_s", "30"},
        {"registration", "enabled", "false"},
        {"log", "level", toml_string("debug")},
        // Tests of the standard protocols run against a plain XMPP server (members could not
        // talk to each other otherwise); peer-support tests set "peersupport.enabled" = "true".
        {"peersupport", "enabled", "false"},
    };
    for (const auto& [dotted, value] : options_.config) {
        auto [section, key] = split_key(dotted);
        bool found = false;
        for (auto& e : entries) {
            if (e.section == section && e.key == key) {
                e.value = value;
                found = true;
            }
        }
        if (!found) {
            entries.push_back({section, key, value});
        }
    }
    // Group by section in first-seen order; an empty value drops the key.
    std::vector<std::string> sections;
    for (const auto& e : entries) {
        if (!e.value.empty() &&
            std::find(sections.begin(), sections.end(), e.section) == sections.end()) {
            sections.push_back(e.section);
        }
    }
    std::ostringstream out;
    out << "# Written by the e2e harness (tests/e2e/harness/server.cpp).\n";
    for (const auto& section : sections) {
        out << "\n[" << section << "]\n";
        for (const auto& e : entries) {
            if (e.section == section && !e.value.empty()) {
                out << e.key << " = " << e.value << "\n";
            }
        }
    }
    if (!options_.extra_toml.empty()) {
        out << "\n" << options_.extra_toml << "\n";
    }
    std::ofstream f(config_path(), std::ios::binary | std::ios::trunc);
    f << out.str();
    if (!f.flush()) {
        fail("cannot write " + config_path().string());
    }
}

void TestServer::set_config(std::string key, std::string value) {
    options_.config[std::move(key)] = std::move(value);
    write_config();
}

std::string TestServer::jid(std::string_view local) const {
    return std::string(local) + "@" + options_.domain;
}

RunResult TestServer::run_ctl(const std::vector<std::string>& args,
                              std::string_view stdin_data) const {
    std::vector<std::string> argv = {havenctl_, "--config", config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_capture(argv, stdin_data);
}

RunResult TestServer::check_config() const {
    return run_capture({havend_, "--config", config_path().string(), "--check-config"}, {});
}

void TestServer::add_user(std::string_view local, std::string_view password,
                          std::string_view role) {
    // No trailing newline: a reader that takes a line and one that takes all of stdin then
    // both see exactly the password.
    const RunResult r = run_ctl(
        {"user", "add", jid(local), "--role", std::string(role), "--password-stdin"}, password);
    if (r.exit_code != 0) {
        fail("havenctl user add " + jid(local) + " exited " + std::to_string(r.exit_code) + ": " +
             r.err + r.out);
    }
}

void TestServer::start() {
    if (pid_ > 0 && running()) {
        fail("start(): havend is already running");
    }
    ++starts_;
    Fd log(::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log) {
        fail(errno_text("open log"));
    }
    // Mark each run so restart tests can tell which process wrote what.
    const std::string marker = "--- harness: havend start #" + std::to_string(starts_) + " ---\n";
    if (::write(log.get(), marker.data(), marker.size()) < 0) {
        fail(errno_text("write log"));
    }
    const Fd null_in = open_dev_null(O_RDONLY);
    pid_ = spawn({havend_, "--config", config_path().string()},
                 {null_in.get(), log.get(), log.get()}, true);
    last_status_.reset();

    std::vector<std::uint16_t> ports = {c2s_port_};
    if (direct_tls_port_ != 0) {
        ports.push_back(direct_tls_port_);
    }
    const auto deadline = Clock::now() + options_.start_timeout;
    while (true) {
        if (!running()) {
            fail("havend exited with status " + std::to_string(last_status_.value_or(-1)) +
                 " during startup; log tail:\n" + log_tail());
        }
        bool all = true;
        for (const auto p : ports) {
            all = all && port_accepts(p);
        }
        if (all) {
            return;
        }
        if (Clock::now() >= deadline) {
            const std::string tail = log_tail();
            kill9();
            fail("havend did not accept connections on 127.0.0.1:" + std::to_string(c2s_port_) +
                 " within " + std::to_string(options_.start_timeout.count()) + " ms; log tail:\n" +
                 tail);
        }
        std::this_thread::sleep_for(20ms);
    }
}

bool TestServer::reap(bool block) {
    if (pid_ <= 0) {
        return true;
    }
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    last_status_ = (r == pid_) ? decode_status(status) : -1;
    pid_ = -1;
    return true;
}

bool TestServer::running() {
    return pid_ > 0 && !reap(false);
}

std::optional<int> TestServer::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (running()) {
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(10ms);
    }
    return last_status_;
}

int TestServer::stop() {
    if (pid_ <= 0) {
        return -1;
    }
    if (!running()) {
        return last_status_.value_or(-1);  // it already exited (crashed?) on its own
    }
    ::kill(pid_, SIGTERM);
    if (auto status = wait_exit(options_.stop_timeout)) {
        return *status;
    }
    std::cerr << "[harness] havend ignored SIGTERM for " << options_.stop_timeout.count()
              << " ms; sending SIGKILL\n";
    ::kill(pid_, SIGKILL);
    reap(true);
    return last_status_.value_or(-1);
}

void TestServer::kill9() {
    if (pid_ > 0 && running()) {
        ::kill(pid_, SIGKILL);
        reap(true);
    }
}

int TestServer::restart() {
    const int status = stop();
    start();
    return status;
}

std::string TestServer::log_contents() const {
    return read_file(log_path());
}

std::string TestServer::log_tail(std::size_t lines) const {
    const std::string all = log_contents();
    std::size_t end = all.size();
    if (end > 0 && all[end - 1] == '\n') {
        --end;  // a trailing newline does not start another line
    }
    std::size_t start = end;
    std::size_t seen = 0;
    while (start > 0) {
        --start;
        if (all[start] == '\n' && ++seen == lines) {
            ++start;
            break;
        }
    }
    return all.substr(start, end - start);
}

}  // namespace haven::test
