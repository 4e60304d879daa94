// Workers and connections of the load generator: one io_context per thread, thousands of
// non-blocking XMPP client connections per worker (never a thread per client).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <openssl/ssl.h>

#include "scanner.hpp"
#include "scram.hpp"
#include "server/net/tls_records.hpp"
#include "stats.hpp"

namespace bench {

enum class TlsMode { None, StartTls, Direct };

struct Options {
    std::string scenario;
    std::string label;
    std::string host = "127.0.0.1";
    std::uint16_t port = 5222;
    std::string domain = "localhost";
    TlsMode tls = TlsMode::StartTls;
    std::string mech = "SCRAM-SHA-256";
    std::string user_prefix = "bench";
    std::string password = "bench-password";
    unsigned users = 100;        // account pool: PREFIX0 .. PREFIX(users-1)
    unsigned clients = 100;      // simultaneous online clients (message, idle)
    unsigned concurrency = 100;  // logins in flight at once
    unsigned threads = 1;
    unsigned source_ips = 1;  // spread connections over 127.0.0.1 .. 127.0.0.N
    double duration = 5;
    double warmup = 1;
    double drain = 2;
    double settle = 2;             // idle: wait before reading the server's RSS
    double login_timeout = 30;     // per connection, connect to bound resource
    double max_seconds = 900;      // hard cap for the whole run
    double rate = 0;               // messages/s offered in total; 0 = maximum (closed loop)
    unsigned window = 2;           // max rate: messages in flight per sender
    // message: accounts 0..supporters-1 are supporters, account k >= supporters is a member of
    // supporter k % supporters (0 = everyone writes to random peers).
    unsigned supporters = 0;
    unsigned inquiry_percent = 0;    // share of members' messages to functional_address
    std::string functional_address;  // bare JID, e.g. team@localhost
    unsigned body_bytes = 64;
    // message --rooms R: every client enters room (k % R)@muc_domain and writes groupchat to
    // its room; each delivery to each occupant counts (delivered occupant-messages).
    unsigned rooms = 0;
    std::string muc_domain;
    unsigned read_buffer = 16 * 1024;  // per connection
    unsigned tick_us = 250;        // fixed rate: send scheduler tick
    int server_pid = 0;
    std::string scram_cache;
    bool presence = true;
    bool cold = false;  // login: measure without the SaltedPassword cache
    unsigned kdf_threads = 0;
    bool openssl_records = false;  // keep OpenSSL for the records instead of TlsRecords
};

enum class Purpose { Online, LoginOnce, Register };

struct WorkerStats {
    // Polled by the main thread while workers run.
    std::atomic<std::uint64_t> ready{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> lost{0};  // online connections closed by the server
    std::atomic<std::uint64_t> pings_ok{0};
    std::atomic<std::uint64_t> done{0};  // LoginOnce / Register completions
    // Read after the workers stopped.
    std::map<std::string, std::uint64_t> fail_reasons;
    std::uint64_t logins_in_window = 0;
    Latency login_latency;
    std::uint64_t kdf_runs = 0;
    std::uint64_t registered = 0;
    std::uint64_t already_registered = 0;
    std::uint64_t sent = 0;
    std::uint64_t sent_in_window = 0;
    std::uint64_t received = 0;
    std::uint64_t received_in_window = 0;
    std::uint64_t msg_errors = 0;
    std::uint64_t send_skipped = 0;
    std::uint64_t granted = 0;              // --supporters: members their supporter wrote to
    std::uint64_t inquiries_sent = 0;       // messages to the functional address
    std::uint64_t inquiries_delivered = 0;  // ... that reached a supporter from an inquiry JID
    Latency msg_latency;
};

enum class Phase : int { Setup, Sending, Draining, Stopping };

// Read-mostly state shared by all workers.
class Worker;

struct Shared {
    explicit Shared(const Options& o);
    ~Shared();
    const Options& opt;
    SSL_CTX* ctx = nullptr;
    ScramCache cache;
    boost::asio::thread_pool kdf_pool;
    std::atomic<std::uint64_t> next_account{0};
    std::uint64_t account_limit = 0;  // LoginOnce/Register: stop when next_account reaches it
    bool loop_accounts = false;       // login storm: wrap around the pool until stopped
    std::atomic<int> phase{static_cast<int>(Phase::Setup)};
    std::atomic<std::int64_t> measure_from{INT64_MAX};
    std::atomic<std::int64_t> measure_to{INT64_MAX};
    std::atomic<std::uint64_t> login_seq{0};
    std::vector<Worker*> workers;  // filled before the workers run; read-only afterwards
};

class Conn {
public:
    Conn(Worker& w, std::uint32_t local_index);
    ~Conn();
    void start(Purpose purpose, unsigned account, unsigned source_ip);
    void close_gracefully();  // </stream:stream>, close_notify, close
    void abort(std::string_view reason);
    bool online() const { return state_ == St::Online; }
    bool idle() const { return state_ == St::Idle; }
    Purpose purpose() const { return purpose_; }
    bool check_deadline(std::int64_t now);
    const std::string& jid() const { return jid_; }
    const std::string& room() const { return room_; }
    std::uint32_t local_index() const { return local_index_; }
    unsigned account() const { return account_; }
    void append_message(const std::string& to, std::int64_t t_ns);
    void send_raw(std::string_view s);
    void flush();
    std::size_t pending_out() const { return out_.size() + wire_.size() - wire_off_; }

    unsigned credit = 0;
    bool is_dirty = false;
    // --supporters (set up by start_traffic): a member's supporter (on this worker, null while
    // it is offline) and whether it has written to the member yet: before that the policy
    // refuses the member's messages. A supporter's members on this worker, online or not.
    bool is_supporter = false;
    Conn* supporter = nullptr;
    bool granted = false;
    std::vector<Conn*> members;

private:
    enum class St {
        Idle, Connecting, Handshake, WaitFeatures, WaitProceed, WaitRegister, WaitSasl, WaitBind,
        WaitSession, WaitRoom, Online
    };
    void on_connected();
    void start_tls();
    void do_handshake();
    void send_header();
    void start_read();
    void on_bytes(char* data, std::size_t n);
    void read_tls();
    bool take_over_records();
    void open_records(std::span<char> in);
    void drain_wbio();
    void send_wire();
    void process();
    void handle(const ScanEvent& ev);
    void on_features(std::string_view xml);
    void on_sasl(const ScanEvent& ev);
    void continue_scram(const ScramKeys& keys);
    void go_online();
    void fail(std::string reason);
    void close_socket();
    static const char* state_name(St s);

    Worker& w_;
    std::uint32_t local_index_;
    boost::asio::ip::tcp::socket sock_;
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr;  // ciphertext from the socket (owned by ssl_)
    BIO* wbio_ = nullptr;  // ciphertext to the socket (owned by ssl_)
    // Captured during the handshake for the takeover, then dropped.
    std::unique_ptr<haven::net::TrafficSecrets> secrets_;
    // After a TLS 1.3 handshake: the records, and ssl_ is gone.
    std::unique_ptr<haven::net::TlsRecords> records_;
    std::uint32_t gen_ = 0;
    Purpose purpose_ = Purpose::Online;
    St state_ = St::Idle;
    unsigned account_ = 0;
    std::string user_;
    std::string jid_;
    std::string room_;  // --rooms: the room's bare JID
    std::string room_nick_;
    unsigned join_retries_ = 0;
    void join_room();
    bool tls_on_ = false;
    bool authed_ = false;
    bool handshaking_ = false;
    bool reading_ = false;
    bool write_waiting_ = false;
    bool want_session_ = false;
    Scanner sc_;
    std::vector<char> inbuf_;  // this connection's socket read buffer
    std::string out_;          // plaintext not yet handed to TLS
    std::string wire_;         // bytes for the socket (ciphertext with TLS)
    std::size_t wire_off_ = 0;
    std::unique_ptr<ScramClient> scram_;
    std::int64_t t_start_ = 0;
    std::int64_t deadline_ = 0;
    std::uint64_t seq_ = 0;
};

class Worker {
public:
    Worker(Shared& shared, unsigned index);
    ~Worker();
    Shared& sh;
    const Options& opt;
    unsigned index;
    boost::asio::io_context io{1};
    WorkerStats st;
    std::vector<char> rbuf;
    std::vector<std::unique_ptr<Conn>> conns;
    std::vector<Conn*> online;
    std::string pad;

    // --- driven from the main thread through post() ---
    // Brings accounts [first, first+count) online with at most `concurrency` logins at once.
    void start_online(std::vector<unsigned> accounts, unsigned concurrency);
    // Runs `slots` parallel LoginOnce/Register loops fed from sh.next_account.
    void start_cycles(Purpose purpose, unsigned slots);
    void start_traffic();      // message scenario: ticker (fixed rate) or credits (max rate)
    void ping_all();           // idle scenario: liveness check
    void shutdown();           // graceful close of everything, then let io.run() return

    // --- called by connections ---
    void on_ready(Conn& c, std::int64_t latency_ns);
    void on_failed(Conn& c, std::string_view reason, bool was_online);
    void on_done(Conn& c);  // a LoginOnce/Register connection finished (it closed itself)
    void on_message(Conn& receiver, std::string_view xml);
    void on_registered(bool created);
    void mark_dirty(Conn& c);
    std::uint64_t rand() {
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 7;
        rng_ ^= rng_ << 17;
        return rng_;
    }
    std::uint64_t next_login_seq() { return sh.login_seq.fetch_add(1); }

private:
    void flush_dirty();
    void tick();
    void start_groups();
    void open_conversations(Conn& supporter);
    void credit_sender(std::uint64_t worker, std::uint64_t local);
    void on_policy_delivery(Conn& receiver, std::string_view xml, std::uint64_t worker,
                               std::uint64_t local);
    void housekeeping();
    void next_online();
    void next_cycle(Conn& c);
    Conn* pick_peer(const Conn& self);
    Conn* pick_member(Conn& supporter);
    const std::string* pick_target(Conn& self);
    void count_sent(std::int64_t t, std::int64_t from, std::int64_t to);
    unsigned source_ip_for(std::uint64_t n) const;

    boost::asio::steady_timer tick_timer_;
    boost::asio::steady_timer house_timer_;
    std::vector<Conn*> dirty_;
    bool flush_posted_ = false;
    std::uint64_t rng_;
    // start_online
    std::vector<unsigned> pending_accounts_;
    std::size_t pending_next_ = 0;
    unsigned in_flight_ = 0;
    unsigned online_concurrency_ = 0;
    // start_cycles
    Purpose cycle_purpose_ = Purpose::LoginOnce;
    // fixed-rate scheduler
    std::int64_t rate_t0_ = 0;
    std::uint64_t rate_sched_ = 0;
    bool traffic_started_ = false;
    bool stopping_ = false;
};

}  // namespace bench
