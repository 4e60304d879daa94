// haven-bench: a bounded XMPP load generator (register, login storm, messaging, idle connections).
//
// Speaks plain RFC 6120/6121 client XMPP, so it measures Haven, Prosody and ejabberd alike. Every
// run is bounded in clients and seconds and only ever connects to a loopback address.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <sys/resource.h>

#include "client.hpp"
#include "selftest.hpp"

namespace asio = boost::asio;
using namespace bench;

namespace {

const char* kUsage = R"(usage: haven-bench SCENARIO [options]

scenarios:
  register   create accounts PREFIX0..PREFIX(users-1) by in-band registration (XEP-0077)
  login      login storm: --concurrency logins in flight, each one connect, TLS, SASL, bind,
             presence, close; one warm-up pass over every account first (fills the SCRAM cache)
  message    --clients online clients send to random online peers (full JIDs):
             --rate R messages/s in total, or --rate 0 = maximum (closed loop, --window per sender);
             --supporters S: the peer-support pattern instead (accounts 0..S-1 supporters, account
             k a member of supporter k % S; supporters write to their members, members answer
             once their supporter wrote, and --inquiry-percent of it goes to --functional-address)
  idle       hold --clients authenticated connections; server RSS per connection; liveness ping
  selftest   offline: the stanza scanner at every split point, SCRAM test vectors

options (defaults in brackets):
  --host ADDR [127.0.0.1] (loopback only)   --port N [5222]   --domain D [localhost]
  --tls starttls|direct|none [starttls]     --mech SCRAM-SHA-256|SCRAM-SHA-1|PLAIN [SCRAM-SHA-256]
  --user-prefix P [bench]   --password PW [bench-password]   --users N [100]
  --clients N [100]   --concurrency N [100]   --threads N [1]   --source-ips N [1] (127.0.0.1..N)
  --duration S [5]   --warmup S [1]   --drain S [2]   --settle S [2]   --login-timeout S [30]
  --max-seconds S [900] hard cap for the whole run
  --rate R [0]   --window W [2]   --body-bytes N [64]   --tick-us N [250]
  --supporters S [0]   --inquiry-percent P [0]   --functional-address JID
  --rooms R [0]   --muc-domain D [groups.<domain>]  message: clients in R rooms, groupchat
  --server-pid PID   CPU (utime+stime) and RSS of the server are read from /proc/PID
  --scram-cache FILE persist SaltedPassword-derived keys across runs
  --cold             login: do not use the SCRAM cache (client PBKDF2 on every login)
  --no-presence      do not send initial presence
  --kdf-threads N    PBKDF2 pool size [cores]
  --records haven|openssl  TLS 1.3 records after the handshake: taken over by the generator
                     (haven: cheaper per message) or left to OpenSSL [haven; openssl for login,
                     whose connections end before the takeover could pay for its key derivations]
  --label TEXT       copied into the RESULT line
Prints a human summary and one line "RESULT {json}".
)";

bool parse(int argc, char** argv, Options& o) {
    if (argc < 2) {
        return false;
    }
    o.scenario = argv[1];
    std::string records = o.scenario == "login" ? "openssl" : "haven";
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                throw std::runtime_error(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--host") o.host = val();
        else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoul(val()));
        else if (a == "--domain") o.domain = val();
        else if (a == "--tls") {
            auto v = val();
            o.tls = v == "none" ? TlsMode::None : v == "direct" ? TlsMode::Direct : TlsMode::StartTls;
        } else if (a == "--mech") o.mech = val();
        else if (a == "--user-prefix") o.user_prefix = val();
        else if (a == "--password") o.password = val();
        else if (a == "--users") o.users = std::stoul(val());
        else if (a == "--clients") o.clients = std::stoul(val());
        else if (a == "--concurrency") o.concurrency = std::stoul(val());
        else if (a == "--threads") o.threads = std::max(1ul, std::stoul(val()));
        else if (a == "--source-ips") o.source_ips = std::max(1ul, std::stoul(val()));
        else if (a == "--duration") o.duration = std::stod(val());
        else if (a == "--warmup") o.warmup = std::stod(val());
        else if (a == "--drain") o.drain = std::stod(val());
        else if (a == "--settle") o.settle = std::stod(val());
        else if (a == "--login-timeout") o.login_timeout = std::stod(val());
        else if (a == "--max-seconds") o.max_seconds = std::stod(val());
        else if (a == "--rate") o.rate = std::stod(val());
        else if (a == "--window") o.window = std::max(1ul, std::stoul(val()));
        else if (a == "--body-bytes") o.body_bytes = std::stoul(val());
        else if (a == "--supporters") o.supporters = std::stoul(val());
        else if (a == "--inquiry-percent") o.inquiry_percent = std::stoul(val());
        else if (a == "--functional-address") o.functional_address = val();
        else if (a == "--rooms") o.rooms = std::stoul(val());
        else if (a == "--muc-domain") o.muc_domain = val();
        else if (a == "--tick-us") o.tick_us = std::max(50ul, std::stoul(val()));
        else if (a == "--server-pid") o.server_pid = std::stoi(val());
        else if (a == "--scram-cache") o.scram_cache = val();
        else if (a == "--cold") o.cold = true;
        else if (a == "--no-presence") o.presence = false;
        else if (a == "--records") {
            auto v = val();
            if (v != "haven" && v != "openssl") {
                throw std::runtime_error("--records: haven or openssl");
            }
            records = v;
        }
        else if (a == "--kdf-threads") o.kdf_threads = std::stoul(val());
        else if (a == "--label") o.label = val();
        else throw std::runtime_error("unknown option " + a);
    }
    o.openssl_records = records == "openssl";
    return true;
}

// A tiny JSON object writer for the RESULT line.
class Json {
public:
    Json& num(const std::string& k, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return raw(k, buf);
    }
    Json& str(const std::string& k, const std::string& v) {
        std::string q = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') {
                q += '\\';
            }
            q += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
        }
        return raw(k, q + "\"");
    }
    Json& raw(const std::string& k, const std::string& v) {
        s_ += (s_.empty() ? "{" : ",") + std::string("\"") + k + "\":" + v;
        return *this;
    }
    std::string done() const { return s_ + "}"; }

private:
    std::string s_;
};

using Clock = std::chrono::steady_clock;

// CPU counters at one instant: generator, server, whole machine, and run-queue waits.
struct CpuSample {
    double gen, srv, all, srv_wait, gen_wait;
    static CpuSample take(pid_t server) {
        return {self_cpu_seconds(), proc_cpu_seconds(server), machine_busy_seconds(),
                proc_runqueue_wait_seconds(server), proc_runqueue_wait_seconds(0)};
    }
};

// CPU use between two samples, in % of one core.
struct CpuUse {
    double gen_cpu, srv_cpu, other_cpu, srv_wait, gen_wait;
};

CpuUse cpu_use(const CpuSample& a, const CpuSample& b, double wall) {
    const double gen = (b.gen - a.gen) / wall * 100;
    const double srv = (b.srv - a.srv) / wall * 100;
    // Whatever else ran on the machine meanwhile (other jobs skew results: re-run if high).
    const double other = std::max(0.0, (b.all - a.all) / wall * 100 - gen - srv);
    return {gen, srv, other, (b.srv_wait - a.srv_wait) / wall * 100,
            (b.gen_wait - a.gen_wait) / wall * 100};
}

class Bench {
public:
    explicit Bench(const Options& o) : opt_(o), sh_(o), start_(Clock::now()) {
        if (!o.scram_cache.empty()) {
            sh_.cache.load(o.scram_cache);
        }
        for (unsigned i = 0; i < o.threads; ++i) {
            workers_.push_back(std::make_unique<Worker>(sh_, i));
            sh_.workers.push_back(workers_.back().get());
        }
        for (auto& w : workers_) {
            guards_.emplace_back(asio::make_work_guard(w->io));
            threads_.emplace_back([wp = w.get()] { wp->io.run(); });
        }
    }

    ~Bench() { stop(); }

    void stop() {
        if (stopped_) {
            return;
        }
        stopped_ = true;
        sh_.phase = static_cast<int>(Phase::Stopping);
        for (auto& w : workers_) {
            asio::post(w->io, [wp = w.get()] { wp->shutdown(); });
        }
        guards_.clear();
        // Closed sockets complete their waits at once; don't hang on a stuck loop.
        auto deadline = Clock::now() + std::chrono::seconds(5);
        for (auto& w : workers_) {
            while (!w->io.stopped() && Clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            w->io.stop();
        }
        for (auto& t : threads_) {
            t.join();
        }
        sh_.kdf_pool.join();
        if (!opt_.scram_cache.empty()) {
            sh_.cache.save(opt_.scram_cache);
        }
    }

    // Sum of a per-worker atomic counter.
    std::uint64_t sum(std::atomic<std::uint64_t> WorkerStats::*m) const {
        std::uint64_t s = 0;
        for (auto& w : workers_) {
            s += (w->st.*m).load();
        }
        return s;
    }

    bool out_of_time() const {
        return Clock::now() - start_ > std::chrono::duration<double>(opt_.max_seconds);
    }

    // Polls `done` every 20 ms until it holds, `seconds` pass or the run's hard cap is reached.
    bool wait_for(const std::function<bool()>& done, double seconds) {
        auto until = Clock::now() + std::chrono::duration<double>(seconds);
        while (!done()) {
            if (Clock::now() > until || out_of_time()) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }

    void sleep_until_ns(std::int64_t t) {
        auto d = t - now_ns();
        if (d > 0) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(d));
        }
    }

    template <class F>
    void each_worker(F f) {
        for (auto& w : workers_) {
            asio::post(w->io, [wp = w.get(), f] { f(*wp); });
        }
    }

    // Account i's worker: i % threads, or with --supporters its supporter's, so that a supporter
    // and its members pick each other and return credit on one thread.
    std::size_t worker_of(unsigned account) const {
        unsigned group = opt_.supporters > 0 ? account % opt_.supporters : account;
        return group % workers_.size();
    }

    // Brings clients 0..n-1 online (account i on worker_of(i)); returns seconds taken.
    double bring_online(unsigned n) {
        auto t0 = Clock::now();
        std::vector<std::vector<unsigned>> per(workers_.size());
        for (unsigned i = 0; i < n; ++i) {
            per[worker_of(i)].push_back(i);
        }
        unsigned conc = std::max(1u, opt_.concurrency / static_cast<unsigned>(workers_.size()));
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            asio::post(workers_[i]->io, [wp = workers_[i].get(), acc = per[i], conc]() mutable {
                wp->start_online(std::move(acc), conc);
            });
        }
        double budget = opt_.login_timeout + n / 50.0 + 30;
        bool ok = wait_for(
            [&] { return sum(&WorkerStats::ready) + sum(&WorkerStats::failed) >= n; }, budget);
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        std::printf("online: %llu/%u clients in %.2f s (%llu failed)%s\n",
                    static_cast<unsigned long long>(sum(&WorkerStats::ready)), n, secs,
                    static_cast<unsigned long long>(sum(&WorkerStats::failed)),
                    ok ? "" : " [gave up waiting]");
        return secs;
    }

    std::map<std::string, std::uint64_t> reasons() const {
        std::map<std::string, std::uint64_t> all;
        for (auto& w : workers_) {
            for (auto& [k, v] : w->st.fail_reasons) {
                all[k] += v;
            }
        }
        return all;
    }

    std::string reasons_text() const {
        std::string s;
        for (auto& [k, v] : reasons()) {
            s += (s.empty() ? "" : "; ") + k + " x" + std::to_string(v);
        }
        return s;
    }

    Json base_json() const {
        Json j;
        j.str("scenario", opt_.scenario).str("label", opt_.label).num("port", opt_.port);
        j.str("tls", opt_.tls == TlsMode::None ? "none"
                     : opt_.tls == TlsMode::Direct ? "direct" : "starttls");
        j.str("mech", opt_.mech).num("threads", opt_.threads);
        return j;
    }

    int run_register();
    int run_login();
    int run_message();
    int run_idle();

    const Options& opt_;
    Shared sh_;
    Clock::time_point start_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopped_{false};
};

int Bench::run_register() {
    sh_.account_limit = opt_.users;
    sh_.loop_accounts = false;
    auto t0 = Clock::now();
    unsigned slots = std::max(1u, opt_.concurrency / static_cast<unsigned>(workers_.size()));
    each_worker([slots](Worker& w) { w.start_cycles(Purpose::Register, slots); });
    bool ok = wait_for(
        [&] { return sum(&WorkerStats::done) + sum(&WorkerStats::failed) >= opt_.users; },
        opt_.max_seconds);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    stop();
    std::uint64_t created = 0, existed = 0;
    for (auto& w : workers_) {
        created += w->st.registered;
        existed += w->st.already_registered;
    }
    auto failed = sum(&WorkerStats::failed);
    std::printf("register: %llu created, %llu existed, %llu failed in %.2f s%s\n",
                static_cast<unsigned long long>(created), static_cast<unsigned long long>(existed),
                static_cast<unsigned long long>(failed), secs, ok ? "" : " [incomplete]");
    if (failed) {
        std::printf("failures: %s\n", reasons_text().c_str());
    }
    auto j = base_json();
    j.num("users", opt_.users).num("created", created).num("existed", existed);
    j.num("failed", failed).num("seconds", secs).str("failures", reasons_text());
    std::printf("RESULT %s\n", j.done().c_str());
    return failed == 0 && ok ? 0 : 1;
}

int Bench::run_login() {
    unsigned slots = std::max(1u, opt_.concurrency / static_cast<unsigned>(workers_.size()));
    double warm_rate = 0, warm_secs = 0;
    std::uint64_t warm_kdf = 0, warm_failed = 0;
    if (!opt_.cold) {
        // Warm-up: every account logs in once, paying (or loading) its PBKDF2 once.
        sh_.account_limit = opt_.users;
        sh_.loop_accounts = false;
        auto t0 = Clock::now();
        each_worker([slots](Worker& w) { w.start_cycles(Purpose::LoginOnce, slots); });
        wait_for([&] { return sum(&WorkerStats::done) + sum(&WorkerStats::failed) >= opt_.users; },
                 opt_.max_seconds);
        warm_secs = std::chrono::duration<double>(Clock::now() - t0).count();
        for (auto& w : workers_) {
            warm_kdf += w->st.kdf_runs;
        }
        warm_failed = sum(&WorkerStats::failed);
        warm_rate = static_cast<double>(sum(&WorkerStats::done)) / warm_secs;
        std::printf("warm-up: %u accounts in %.2f s (%.0f logins/s, %llu client PBKDF2 runs, "
                    "%llu failed)\n",
                    opt_.users, warm_secs, warm_rate, static_cast<unsigned long long>(warm_kdf),
                    static_cast<unsigned long long>(warm_failed));
        // Let the loops go idle before the measured storm.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    std::vector<std::uint64_t> failed_before;
    // Reset counters that the storm reports (workers are idle between phases).
    std::uint64_t kdf_before = 0;
    for (auto& w : workers_) {
        kdf_before += w->st.kdf_runs;
        failed_before.push_back(w->st.failed.load());
    }
    std::uint64_t done_before = sum(&WorkerStats::done);
    auto fails_before = reasons();

    sh_.next_account = 0;
    sh_.loop_accounts = true;
    auto t_start = now_ns();
    auto from = t_start + static_cast<std::int64_t>(opt_.warmup * 1e9);
    auto to = from + static_cast<std::int64_t>(opt_.duration * 1e9);
    for (auto& w : workers_) {
        w->st.login_latency = Latency{};
    }
    sh_.measure_from = from;
    sh_.measure_to = to;
    sh_.phase = static_cast<int>(Phase::Sending);
    each_worker([slots](Worker& w) { w.start_cycles(Purpose::LoginOnce, slots); });
    sleep_until_ns(from);
    const auto cpu0 = CpuSample::take(opt_.server_pid);
    sleep_until_ns(to);
    const auto cpu1 = CpuSample::take(opt_.server_pid);
    sh_.phase = static_cast<int>(Phase::Draining);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop();

    Latency lat;
    std::uint64_t logins = 0, kdf = 0;
    for (auto& w : workers_) {
        lat.merge(w->st.login_latency);
        logins += w->st.logins_in_window;
        kdf += w->st.kdf_runs;
    }
    kdf -= kdf_before;
    std::uint64_t failed = sum(&WorkerStats::failed);
    for (auto f : failed_before) {
        failed -= f;
    }
    (void)done_before;
    double wall = (to - from) / 1e9;
    double rate = logins / wall;
    const auto [gen_cpu, srv_cpu, other_cpu, srv_wait, gen_wait] = cpu_use(cpu0, cpu1, wall);
    std::printf("login storm (%s, %s, concurrency %u, %s): %.0f logins/s over %.1f s; latency "
                "p50 %.2f ms p99 %.2f ms; %llu failed; client PBKDF2 during storm: %llu\n",
                opt_.tls == TlsMode::None ? "no TLS" : "TLS", opt_.mech.c_str(), opt_.concurrency,
                opt_.cold ? "cold" : "cached keys", rate, wall, lat.quantile_ms(0.5),
                lat.quantile_ms(0.99), static_cast<unsigned long long>(failed),
                static_cast<unsigned long long>(kdf));
    std::printf("cpu: generator %.0f%%, server %.0f%%, everything else %.0f%% (100%% = one core); "
                "waiting for a CPU: server %.0f%%, generator %.0f%%\n",
                gen_cpu, srv_cpu, other_cpu, srv_wait, gen_wait);
    if (failed || warm_failed) {
        std::printf("failures: %s\n", reasons_text().c_str());
    }
    auto j = base_json();
    j.num("users", opt_.users).num("concurrency", opt_.concurrency).num("cold", opt_.cold);
    j.num("warm_logins_per_s", warm_rate).num("warm_seconds", warm_secs);
    j.num("warm_kdf", warm_kdf).num("warm_failed", warm_failed);
    j.num("logins_per_s", rate).num("logins", logins).num("seconds", wall);
    j.num("p50_ms", lat.quantile_ms(0.5)).num("p99_ms", lat.quantile_ms(0.99));
    j.num("failed", failed).num("storm_kdf", kdf);
    j.num("gen_cpu_pct", gen_cpu).num("server_cpu_pct", srv_cpu).num("other_cpu_pct", other_cpu)
        .num("server_wait_pct", srv_wait).num("gen_wait_pct", gen_wait).str("failures", reasons_text());
    std::printf("RESULT %s\n", j.done().c_str());
    return failed == 0 && warm_failed == 0 ? 0 : 1;
}

int Bench::run_message() {
    bring_online(opt_.clients);
    auto online = sum(&WorkerStats::ready);
    auto connect_failed = sum(&WorkerStats::failed);
    if (online < 2) {
        stop();
        std::printf("not enough clients online\n%s\n", reasons_text().c_str());
        return 1;
    }
    // Let presence broadcasts and roster loads settle before measuring.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto t_start = now_ns();
    auto from = t_start + static_cast<std::int64_t>(opt_.warmup * 1e9);
    auto to = from + static_cast<std::int64_t>(opt_.duration * 1e9);
    sh_.measure_from = from;
    sh_.measure_to = to;
    sh_.phase = static_cast<int>(Phase::Sending);
    each_worker([](Worker& w) { w.start_traffic(); });
    sleep_until_ns(from);
    const auto cpu0 = CpuSample::take(opt_.server_pid);
    sleep_until_ns(to);
    const auto cpu1 = CpuSample::take(opt_.server_pid);
    long srv_rss = proc_rss_kb(opt_.server_pid);
    sh_.phase = static_cast<int>(Phase::Draining);
    std::this_thread::sleep_for(std::chrono::duration<double>(opt_.drain));
    stop();

    Latency lat;
    std::uint64_t sent = 0, sent_w = 0, recv = 0, recv_w = 0, errs = 0, skipped = 0;
    std::uint64_t granted = 0, inq_sent = 0, inq_delivered = 0;
    for (auto& w : workers_) {
        granted += w->st.granted;
        inq_sent += w->st.inquiries_sent;
        inq_delivered += w->st.inquiries_delivered;
        lat.merge(w->st.msg_latency);
        sent += w->st.sent;
        sent_w += w->st.sent_in_window;
        recv += w->st.received;
        recv_w += w->st.received_in_window;
        errs += w->st.msg_errors;
        skipped += w->st.send_skipped;
    }
    auto lost_conns = sum(&WorkerStats::lost);
    double wall = (to - from) / 1e9;
    double delivered = recv_w / wall;
    double offered = opt_.rate > 0 ? sent_w / wall : 0;
    const auto [gen_cpu, srv_cpu, other_cpu, srv_wait, gen_wait] = cpu_use(cpu0, cpu1, wall);
    // In rooms each message is delivered once per occupant (the sender's reflection included).
    const auto copies = opt_.rooms > 0 ? std::max<std::uint64_t>(1, online / opt_.rooms) : 1;
    std::int64_t undelivered = static_cast<std::int64_t>(sent * copies) -
                               static_cast<std::int64_t>(recv) - static_cast<std::int64_t>(errs);
    std::printf("messaging (%llu clients, %s, %s): delivered %.0f msgs/s over %.1f s; latency "
                "p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms\n",
                static_cast<unsigned long long>(online),
                opt_.rate > 0 ? ("offered " + std::to_string(static_cast<long>(opt_.rate)) +
                                 " msgs/s")
                                    .c_str()
                              : ("max rate, window " + std::to_string(opt_.window)).c_str(),
                opt_.tls == TlsMode::None ? "no TLS" : "TLS", delivered, wall,
                lat.quantile_ms(0.5), lat.quantile_ms(0.99), lat.quantile_ms(0.999),
                lat.quantile_ms(1.0));
    std::printf("sent %llu, delivered %llu, error replies %llu, undelivered after %.1f s drain "
                "%lld, not sent (backpressure) %llu, connections lost %llu\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(recv),
                static_cast<unsigned long long>(errs), opt_.drain,
                static_cast<long long>(undelivered), static_cast<unsigned long long>(skipped),
                static_cast<unsigned long long>(lost_conns));
    std::printf("cpu: generator %.0f%%, server %.0f%%, everything else %.0f%% (100%% = one core); "
                "waiting for a CPU: server %.0f%%, generator %.0f%%; server RSS %ld KiB\n",
                gen_cpu, srv_cpu, other_cpu, srv_wait, gen_wait, srv_rss);
    if (opt_.supporters > 0) {
        const auto members = online > opt_.supporters ? online - opt_.supporters : 0;
        std::printf("peer support: %u supporters, %llu members online, %llu of them written to "
                    "by their supporter; inquiries to %s: %llu sent, %llu delivered\n",
                    opt_.supporters, static_cast<unsigned long long>(members),
                    static_cast<unsigned long long>(granted),
                    opt_.functional_address.empty() ? "-" : opt_.functional_address.c_str(),
                    static_cast<unsigned long long>(inq_sent),
                    static_cast<unsigned long long>(inq_delivered));
    }
    if (connect_failed || lost_conns || errs) {
        std::printf("failures: %s\n", reasons_text().c_str());
    }
    auto j = base_json();
    j.num("clients", online).num("connect_failed", connect_failed).num("rate", opt_.rate);
    j.num("supporters", opt_.supporters).num("inquiry_percent", opt_.inquiry_percent);
    j.num("granted", granted).num("inquiries_sent", inq_sent);
    j.num("inquiries_delivered", inq_delivered);
    j.num("rooms", opt_.rooms).num("occupants_per_room", opt_.rooms > 0 ? online / opt_.rooms : 0);
    j.num("window", opt_.window).num("body_bytes", opt_.body_bytes);
    j.num("offered_per_s", offered).num("delivered_per_s", delivered).num("seconds", wall);
    j.num("p50_ms", lat.quantile_ms(0.5)).num("p99_ms", lat.quantile_ms(0.99));
    j.num("p999_ms", lat.quantile_ms(0.999)).num("max_ms", lat.quantile_ms(1.0));
    j.num("sent", sent).num("delivered", recv).num("errors", errs).num("undelivered", undelivered);
    j.num("skipped", skipped).num("lost_connections", lost_conns);
    j.num("gen_cpu_pct", gen_cpu).num("server_cpu_pct", srv_cpu).num("other_cpu_pct", other_cpu)
        .num("server_wait_pct", srv_wait).num("gen_wait_pct", gen_wait).num("server_rss_kb", srv_rss);
    j.str("failures", reasons_text());
    std::printf("RESULT %s\n", j.done().c_str());
    return connect_failed == 0 && lost_conns == 0 ? 0 : 1;
}

int Bench::run_idle() {
    long rss0 = proc_rss_kb(opt_.server_pid);
    long gen_rss0 = proc_rss_kb(0);
    double connect_secs = bring_online(opt_.clients);
    auto online = sum(&WorkerStats::ready);
    auto failed = sum(&WorkerStats::failed);
    // Just logged in (a server may give memory back once connections have been idle a while,
    // as havend does after [c2s] hibernate_after_s: --settle decides which state is measured).
    long rss_online = proc_rss_kb(opt_.server_pid);
    std::this_thread::sleep_for(std::chrono::duration<double>(opt_.settle));
    long rss1 = proc_rss_kb(opt_.server_pid);
    long gen_rss1 = proc_rss_kb(0);
    double srv0 = proc_cpu_seconds(opt_.server_pid);
    auto t0 = Clock::now();
    // Hold, watching for connections the server drops.
    wait_for([] { return false; }, opt_.duration);
    double held = std::chrono::duration<double>(Clock::now() - t0).count();
    double srv1 = proc_cpu_seconds(opt_.server_pid);
    long rss2 = proc_rss_kb(opt_.server_pid);
    auto lost = sum(&WorkerStats::lost);
    // Liveness: every held connection must still answer a ping.
    each_worker([](Worker& w) { w.ping_all(); });
    wait_for([&] { return sum(&WorkerStats::pings_ok) >= online - lost; }, 15);
    auto alive = sum(&WorkerStats::pings_ok);
    long rss_pinged = proc_rss_kb(opt_.server_pid);  // every connection just active again
    stop();
    double per_conn = online ? static_cast<double>(rss1 - rss0) / static_cast<double>(online) : 0;
    double gen_per_conn =
        online ? static_cast<double>(gen_rss1 - gen_rss0) / static_cast<double>(online) : 0;
    std::printf("idle: %llu/%u connections authenticated (%llu failed) in %.1f s; held %.1f s, "
                "%llu lost, %llu answered a ping afterwards\n",
                static_cast<unsigned long long>(online), opt_.clients,
                static_cast<unsigned long long>(failed), connect_secs, held,
                static_cast<unsigned long long>(lost), static_cast<unsigned long long>(alive));
    std::printf("server RSS: %ld KiB before, %ld KiB with connections (%ld KiB after holding): "
                "%.1f KiB per connection; server CPU while idle %.1f%%\n",
                rss0, rss1, rss2, per_conn, held > 0 ? (srv1 - srv0) / held * 100 : 0);
    const auto per = [&](long rss) {
        return online ? static_cast<double>(rss - rss0) / static_cast<double>(online) : 0.0;
    };
    std::printf("server RSS per connection: %.1f KiB just logged in, %.1f KiB after %.0f s "
                "settling, %.1f KiB right after the pings\n",
                per(rss_online), per_conn, opt_.settle, per(rss_pinged));
    std::printf("generator RSS: %.1f KiB per connection\n", gen_per_conn);
    if (failed || lost) {
        std::printf("failures: %s\n", reasons_text().c_str());
    }
    auto j = base_json();
    j.num("clients", opt_.clients).num("online", online).num("failed", failed).num("lost", lost);
    j.num("alive", alive).num("connect_seconds", connect_secs).num("held_seconds", held);
    j.num("rss_before_kb", rss0).num("rss_after_kb", rss1).num("rss_end_kb", rss2);
    j.num("kb_per_conn", per_conn).num("gen_kb_per_conn", gen_per_conn);
    j.num("kb_per_conn_online", per(rss_online)).num("kb_per_conn_pinged", per(rss_pinged));
    j.num("settle_seconds", opt_.settle);
    j.num("server_idle_cpu_pct", held > 0 ? (srv1 - srv0) / held * 100 : 0);
    j.str("failures", reasons_text());
    std::printf("RESULT %s\n", j.done().c_str());
    return failed == 0 && lost == 0 && alive == online ? 0 : 1;
}

void raise_fd_limit(std::size_t want) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= want) {
        return;
    }
    rlimit nl = rl;
    nl.rlim_cur = std::min<rlim_t>(want, rl.rlim_max);
    if (want > rl.rlim_max) {
        nl.rlim_max = want;  // works as root; otherwise fall back to the hard limit
        nl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0) {
            return;
        }
        nl = rl;
        nl.rlim_cur = rl.rlim_max;
    }
    setrlimit(RLIMIT_NOFILE, &nl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        std::fprintf(stderr, "haven-bench: warning: only %llu file descriptors (wanted %zu)\n",
                     static_cast<unsigned long long>(rl.rlim_cur), want);
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    try {
        if (!parse(argc, argv, opt)) {
            std::fputs(kUsage, stderr);
            return 2;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "haven-bench: %s\n%s", e.what(), kUsage);
        return 2;
    }
    if (opt.scenario == "selftest") {
        return selftest();
    }
    if (opt.scenario != "register" && opt.scenario != "login" && opt.scenario != "message" &&
        opt.scenario != "idle") {
        std::fputs(kUsage, stderr);
        return 2;
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(opt.host, ec);
    if (ec || !addr.is_loopback()) {
        std::fprintf(stderr, "haven-bench: --host must be a loopback address\n");
        return 2;
    }
    if (!addr.is_v4()) {
        std::fprintf(stderr, "haven-bench: --host must be IPv4 loopback (127.x.y.z)\n");
        return 2;
    }
    if (opt.source_ips > 254) {
        std::fprintf(stderr, "haven-bench: --source-ips is at most 254\n");
        return 2;
    }
    if (opt.users == 0 || opt.clients == 0 || opt.duration <= 0 || opt.max_seconds <= 0) {
        std::fprintf(stderr, "haven-bench: users, clients, duration and max-seconds must be > 0\n");
        return 2;
    }
    if (opt.scenario == "idle") {
        opt.read_buffer = 4096;  // thousands of quiet connections
    }
    if ((opt.scenario == "message" || opt.scenario == "idle") && opt.clients > opt.users) {
        opt.users = opt.clients;
    }
    if (opt.supporters > 0 && opt.supporters >= opt.clients) {
        std::fprintf(stderr, "haven-bench: --supporters must be fewer than --clients\n");
        return 2;
    }
    if (opt.inquiry_percent > 100 ||
        (opt.inquiry_percent > 0 && (opt.supporters == 0 || opt.functional_address.empty()))) {
        std::fprintf(stderr, "haven-bench: --inquiry-percent (at most 100) needs --supporters and "
                             "--functional-address\n");
        return 2;
    }
    if (opt.rooms > 0 && opt.muc_domain.empty()) {
        opt.muc_domain = "groups." + opt.domain;
    }
    if (opt.rooms > 0 && (opt.supporters > 0 || opt.rooms > opt.clients)) {
        std::fprintf(stderr, "haven-bench: --rooms needs fewer rooms than --clients and no "
                             "--supporters\n");
        return 2;
    }
    if (opt.mech != "PLAIN" && opt.mech != "SCRAM-SHA-1" && opt.mech != "SCRAM-SHA-256") {
        std::fprintf(stderr, "haven-bench: --mech must be SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(static_cast<std::size_t>(std::max(opt.clients, opt.concurrency)) + 1024);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);

    Bench b(opt);
    // Enforce the hard cap even if a phase misbehaves.
    std::thread watchdog([&b, &opt] {
        auto end = Clock::now() + std::chrono::duration<double>(opt.max_seconds + 30);
        while (Clock::now() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            if (b.stopped_) {
                return;
            }
        }
        std::fprintf(stderr, "haven-bench: --max-seconds exceeded, exiting\n");
        std::_Exit(3);
    });
    int rc = 1;
    if (opt.scenario == "register") rc = b.run_register();
    else if (opt.scenario == "login") rc = b.run_login();
    else if (opt.scenario == "message") rc = b.run_message();
    else rc = b.run_idle();
    b.stop();
    watchdog.join();
    return rc;
}
