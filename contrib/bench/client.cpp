// Connection state machine (TCP, STARTTLS/direct TLS, SASL, bind, presence) and per-thread workers.
//
// TLS runs over memory BIOs: one socket read feeds every record it carries to OpenSSL, and one
// send() carries every record a flush produced, so the generator spends as few system calls per
// message as it can (it must stay cheaper than the servers it measures). After a TLS 1.3
// handshake the records are handed to haven::net::TlsRecords and the SSL is freed (unless
// --openssl-records): OpenSSL's record layer cost the generator more CPU than the AEAD itself.
#include "client.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <thread>

#include <boost/asio/post.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

namespace bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    if (e == 0) {
        return "unknown TLS error";
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

void append_num(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

std::string_view first_child_name(std::string_view xml) {
    auto gt = xml.find('>');
    if (gt == std::string_view::npos) {
        return {};
    }
    auto lt = xml.find('<', gt);
    if (lt == std::string_view::npos || lt + 1 >= xml.size() || xml[lt + 1] == '/') {
        return {};
    }
    std::size_t e = lt + 1;
    while (e < xml.size() && xml[e] != ' ' && xml[e] != '>' && xml[e] != '/' && xml[e] != '\n') {
        ++e;
    }
    auto name = xml.substr(lt + 1, e - lt - 1);
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// The defined condition of a stanza error: the first child of <error/> that is not <text/>.
std::string_view error_condition(std::string_view xml) {
    auto p = xml.find("<error");
    if (p == std::string_view::npos) {
        return "?";
    }
    auto rest = xml.substr(p);
    auto name = first_child_name(rest);
    if (name == "text") {
        auto after = rest.find("</text>");
        if (after != std::string_view::npos) {
            auto lt = rest.find('<', after + 7);
            if (lt != std::string_view::npos && rest[lt + 1] != '/') {
                return first_child_name(rest.substr(lt - 1));
            }
        }
    }
    return name.empty() ? "?" : name;
}

bool in_window(std::int64_t t, std::int64_t from, std::int64_t to) { return t >= from && t < to; }

}  // namespace

Shared::Shared(const Options& o)
    : opt(o),
      kdf_pool(o.kdf_threads ? o.kdf_threads
                             : std::max(1u, std::thread::hardware_concurrency())) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // self-signed dev certificates
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every login pays a full handshake
    if (o.scenario == "idle") {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // thousands of quiet connections
    }
    if (!o.openssl_records) {
        haven::net::enable_record_takeover(ctx);  // traffic secrets for take_over_records()
    }
}

Shared::~Shared() {
    kdf_pool.join();
    SSL_CTX_free(ctx);
}

// ---------------------------------------------------------------------------------------------
// Conn

Conn::Conn(Worker& w, std::uint32_t local_index)
    : w_(w), local_index_(local_index), sock_(w.io) {}

Conn::~Conn() {
    if (ssl_) {
        SSL_free(ssl_);
    }
}

const char* Conn::state_name(St s) {
    switch (s) {
        case St::Idle: return "idle";
        case St::Connecting: return "connect";
        case St::Handshake: return "tls-handshake";
        case St::WaitFeatures: return "features";
        case St::WaitProceed: return "starttls";
        case St::WaitRegister: return "register";
        case St::WaitSasl: return "sasl";
        case St::WaitBind: return "bind";
        case St::WaitSession: return "session";
        case St::Online: return "online";
    }
    return "?";
}

void Conn::start(Purpose purpose, unsigned account, unsigned source_ip) {
    close_socket();
    ++gen_;
    const auto& opt = w_.opt;
    purpose_ = purpose;
    account_ = account;
    user_ = opt.user_prefix + std::to_string(account);
    jid_.clear();
    authed_ = tls_on_ = handshaking_ = false;
    want_session_ = false;
    sc_.clear();
    out_.clear();
    wire_.clear();
    wire_off_ = 0;
    scram_.reset();
    credit = 0;
    state_ = St::Connecting;
    t_start_ = now_ns();
    deadline_ = t_start_ + static_cast<std::int64_t>(opt.login_timeout * 1e9);

    boost::system::error_code ec;
    sock_.open(tcp::v4(), ec);
    if (ec) {
        fail("socket: " + ec.message());
        return;
    }
    if (source_ip > 1) {
        // Many connections from one source address run out of ephemeral ports; loopback has
        // 127.0.0.0/8, so spread over 127.0.0.N. Defer the port choice to connect().
        int one = 1;
        ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                     sizeof one);
        sock_.bind(tcp::endpoint(asio::ip::address_v4(0x7f000000u | (source_ip & 0xff)), 0), ec);
        if (ec) {
            fail("bind: " + ec.message());
            return;
        }
    }
    sock_.set_option(tcp::no_delay(true), ec);
    tcp::endpoint ep(asio::ip::make_address(opt.host), opt.port);
    sock_.async_connect(ep, [this, g = gen_](const boost::system::error_code& e) {
        if (g != gen_) {
            return;
        }
        if (e) {
            fail("connect: " + e.message());
            return;
        }
        on_connected();
    });
}

void Conn::on_connected() {
    // Re-register the descriptor: the connect left EPOLLOUT in its epoll interest set, which
    // would wake the loop on every later read re-arm for nothing.
    boost::system::error_code ec;
    auto fd = sock_.release(ec);
    if (!ec) {
        sock_.assign(tcp::v4(), fd, ec);
    }
    if (ec) {
        fail("re-register: " + ec.message());
        return;
    }
    sock_.non_blocking(true, ec);
    if (inbuf_.size() != w_.opt.read_buffer) {
        inbuf_.assign(w_.opt.read_buffer, '\0');
    }
    start_read();
    if (w_.opt.tls == TlsMode::Direct) {
        start_tls();
        return;
    }
    send_header();
}

void Conn::send_header() {
    out_ += "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' to='";
    out_ += w_.opt.domain;
    out_ += "' version='1.0'>";
    state_ = St::WaitFeatures;
    flush();
}

void Conn::start_tls() {
    out_.clear();
    ssl_ = SSL_new(w_.sh.ctx);
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio_, -1);  // empty means "more to come", not EOF
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_tlsext_host_name(ssl_, w_.opt.domain.c_str());
    SSL_set_connect_state(ssl_);
    if (!w_.opt.openssl_records) {
        secrets_ = std::make_unique<haven::net::TrafficSecrets>();
        haven::net::attach_secrets(ssl_, secrets_.get());
    }
    handshaking_ = true;
    state_ = St::Handshake;
    do_handshake();
}

void Conn::do_handshake() {
    int r = SSL_do_handshake(ssl_);
    int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    auto g = gen_;
    drain_wbio();
    send_wire();
    if (g != gen_) {
        return;
    }
    if (r == 1) {
        handshaking_ = false;
        tls_on_ = true;
        sc_.clear();
        // Our Finished is already on wire_, so everything written from here on is ours to seal.
        std::string unread;
        if (take_over_records()) {
            // What the server sent after its Finished (tickets, perhaps its first stanza) was
            // never read by OpenSSL: it is exactly the next records, under the traffic keys.
            unread.resize(BIO_ctrl_pending(rbio_));
            if (!unread.empty()) {
                (void)BIO_read(rbio_, unread.data(), static_cast<int>(unread.size()));
            }
            SSL_free(ssl_);  // frees both BIOs
            ssl_ = nullptr;
            rbio_ = wbio_ = nullptr;
        }
        send_header();
        if (g != gen_) {
            return;
        }
        if (records_) {
            if (!unread.empty()) {
                open_records(unread);
            }
        } else if (BIO_ctrl_pending(rbio_) > 0) {
            read_tls();
        }
        return;
    }
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        fail("TLS handshake: " + ssl_error_text());
    }
}

// Hands the connection's records to TlsRecords when OpenSSL allows it exactly (TLS 1.3, nothing
// buffered inside OpenSSL); otherwise OpenSSL keeps them. The secrets are not needed either way.
bool Conn::take_over_records() {
    if (!secrets_) {
        return false;  // --openssl-records
    }
    haven::net::attach_secrets(ssl_, nullptr);
    const auto secrets = std::move(secrets_);
    records_ = haven::net::TlsRecords::take_over(ssl_, *secrets);
    return records_ != nullptr;
}

void Conn::open_records(std::span<char> in) {
    const auto g = gen_;
    const auto status = records_->open(in, wire_, [this](std::string_view plain) {
        sc_.append(plain);
        return true;
    });
    if (wire_.size() > wire_off_) {  // e.g. the fatal alert of a failed open()
        send_wire();
        if (g != gen_) {
            return;
        }
    }
    if (status == haven::net::TlsRecords::Status::PeerClosed) {
        fail("TLS closed by server");
        return;
    }
    if (status == haven::net::TlsRecords::Status::Failed) {
        fail("TLS read: " + records_->failure());
        return;
    }
    process();
}

// Reads go through asio's speculative path: when data is waiting the read happens at once,
// otherwise the operation waits for the next edge without touching the epoll set.
void Conn::start_read() {
    if (reading_) {
        return;
    }
    reading_ = true;
    sock_.async_read_some(asio::buffer(inbuf_),
                          [this, g = gen_](const boost::system::error_code& e, std::size_t n) {
                              if (g != gen_) {
                                  return;
                              }
                              reading_ = false;
                              if (e) {
                                  fail(e == asio::error::eof ? "connection closed by server"
                                                             : "read: " + e.message());
                                  return;
                              }
                              on_bytes(inbuf_.data(), n);
                              if (g == gen_) {
                                  start_read();
                              }
                          });
}

void Conn::on_bytes(char* data, std::size_t n) {
    if (records_) {
        open_records(std::span<char>(data, n));  // decrypted in place in inbuf_
        return;
    }
    if (!ssl_) {
        sc_.append(std::string_view(data, n));
        process();
        return;
    }
    BIO_write(rbio_, data, static_cast<int>(n));
    if (handshaking_) {
        do_handshake();
        return;
    }
    read_tls();
}

void Conn::read_tls() {
    auto g = gen_;
    auto& buf = w_.rbuf;
    while (true) {
        std::size_t n = 0;
        int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
        if (r == 1) {
            sc_.append(std::string_view(buf.data(), n));
            continue;
        }
        int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_WANT_READ) {
            break;
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            fail("TLS closed by server");
        } else {
            fail("TLS read: " + ssl_error_text());
        }
        return;
    }
    if (BIO_ctrl_pending(wbio_) > 0) {  // e.g. a key update answer
        drain_wbio();
        send_wire();
        if (g != gen_) {
            return;
        }
    }
    process();
}

void Conn::send_raw(std::string_view s) {
    out_ += s;
    flush();
}

void Conn::flush() {
    if (state_ == St::Idle || state_ == St::Connecting || handshaking_) {
        return;
    }
    if (!out_.empty()) {
        if (records_) {
            // One call seals every record the buffered stanzas need, straight onto the wire.
            if (!records_->seal(out_, wire_)) {
                fail("TLS write: " + records_->failure());
                return;
            }
            out_.clear();
        } else if (ssl_) {
            std::size_t n = 0;
            // A memory BIO takes everything: one call, as many records as needed.
            if (SSL_write_ex(ssl_, out_.data(), out_.size(), &n) != 1 || n != out_.size()) {
                fail("TLS write: " + ssl_error_text());
                return;
            }
            out_.clear();
            drain_wbio();
        } else if (wire_.empty()) {
            wire_.swap(out_);
        } else {
            wire_ += out_;
            out_.clear();
        }
    }
    send_wire();
}

void Conn::drain_wbio() {
    char* p = nullptr;
    long len = BIO_get_mem_data(wbio_, &p);
    if (len > 0) {
        wire_.append(p, static_cast<std::size_t>(len));
        (void)BIO_reset(wbio_);
    }
}

void Conn::send_wire() {
    if (write_waiting_) {
        return;  // the writable callback sends what is queued, in order
    }
    while (wire_off_ < wire_.size()) {
        ssize_t r = ::send(sock_.native_handle(), wire_.data() + wire_off_,
                           wire_.size() - wire_off_, MSG_NOSIGNAL);
        if (r >= 0) {
            wire_off_ += static_cast<std::size_t>(r);
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            write_waiting_ = true;
            sock_.async_wait(tcp::socket::wait_write,
                             [this, g = gen_](const boost::system::error_code& e) {
                                 if (g != gen_) {
                                     return;
                                 }
                                 write_waiting_ = false;
                                 if (e) {
                                     fail("wait: " + e.message());
                                     return;
                                 }
                                 send_wire();
                             });
            return;
        }
        fail(std::string("write: ") + std::strerror(errno));
        return;
    }
    wire_.clear();
    wire_off_ = 0;
    if (wire_.capacity() > 256 * 1024) {
        wire_.shrink_to_fit();
    }
}

void Conn::process() {
    auto g = gen_;
    ScanEvent ev;
    while (sc_.next(ev)) {
        handle(ev);
        if (g != gen_ || handshaking_) {
            return;
        }
    }
    sc_.compact();
}

void Conn::handle(const ScanEvent& ev) {
    if (ev.kind == ScanEvent::Kind::StreamOpen) {
        return;
    }
    if (ev.kind == ScanEvent::Kind::StreamClose) {
        fail(std::string("stream closed by server in ") + state_name(state_));
        return;
    }
    const auto xml = ev.xml;
    if (ev.name == "error") {  // only <stream:error/> is a top-level "error"
        fail(std::string("stream error in ") + state_name(state_) + ": " +
             std::string(first_child_name(xml)));
        return;
    }
    switch (state_) {
        case St::WaitFeatures:
            if (ev.name == "features") {
                on_features(xml);
            }
            return;
        case St::WaitProceed:
            if (ev.name == "proceed") {
                sc_.clear();  // nothing sent in plaintext after <proceed/> may be used
                start_tls();
            } else {
                fail("starttls refused");
            }
            return;
        case St::WaitRegister:
            if (ev.name == "iq" && tag_attr(xml, "id") == "reg") {
                if (tag_attr(xml, "type") == "result") {
                    w_.on_registered(true);
                } else if (has_child(xml, "conflict")) {
                    w_.on_registered(false);
                } else {
                    std::string why(first_child_name(xml.substr(xml.find("<error"))));
                    fail("register refused: " + why);
                    return;
                }
                close_gracefully();
                w_.on_done(*this);
            }
            return;
        case St::WaitSasl: on_sasl(ev); return;
        case St::WaitBind:
            if (ev.name == "iq" && tag_attr(xml, "id") == "bind") {
                if (tag_attr(xml, "type") != "result") {
                    fail("bind refused");
                    return;
                }
                jid_ = std::string(child_text(xml, "jid"));
                if (jid_.empty()) {
                    fail("bind result without a JID");
                    return;
                }
                if (want_session_) {
                    state_ = St::WaitSession;
                    send_raw("<iq type='set' id='sess'><session "
                             "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
                } else {
                    go_online();
                }
            }
            return;
        case St::WaitSession:
            if (ev.name == "iq" && tag_attr(xml, "id") == "sess") {
                go_online();
            }
            return;
        case St::WaitRoom:
            // Others' presences come first; our own (from room/nick) says we are in.
            if (ev.name == "presence" && tag_attr(xml, "from") == room_ + "/" + room_nick_) {
                if (tag_attr(xml, "type") == "error") {
                    if (error_condition(xml) == "item-not-found" && ++join_retries_ < 1000) {
                        join_room();  // locked until its creator configured it
                        return;
                    }
                    fail("room join refused: " + std::string(error_condition(xml)));
                    return;
                }
                if (xml.find("code='201'") != std::string_view::npos ||
                    xml.find("code=\"201\"") != std::string_view::npos) {
                    send_raw("<iq type='set' id='instant' to='" + room_ +
                             "'><query xmlns='http://jabber.org/protocol/muc#owner'><x "
                             "xmlns='jabber:x:data' type='submit'/></query></iq>");
                }
                state_ = St::Online;
                w_.on_ready(*this, now_ns() - t_start_);
            }
            return;
        case St::Online:
            if (ev.name == "message") {
                w_.on_message(*this, xml);
            } else if (ev.name == "iq") {
                auto id = tag_attr(xml, "id");
                auto type = tag_attr(xml, "type");
                if (id == "alive") {
                    w_.st.pings_ok.fetch_add(1, std::memory_order_relaxed);
                } else if (type == "get" || type == "set") {
                    // Answer server pings (and refuse anything else) as a real client would.
                    std::string reply = "<iq id='" + std::string(id) + "'";
                    if (auto from = tag_attr(xml, "from"); !from.empty()) {
                        reply += " to='" + std::string(from) + "'";
                    }
                    if (has_child(xml, "ping")) {
                        reply += " type='result'/>";
                    } else {
                        reply += " type='error'><error type='cancel'><service-unavailable "
                                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
                    }
                    send_raw(reply);
                }
            }
            return;
        default: return;
    }
}

void Conn::on_features(std::string_view xml) {
    const auto& opt = w_.opt;
    if (!tls_on_ && opt.tls == TlsMode::StartTls) {
        if (!has_child(xml, "starttls")) {
            fail("server does not offer STARTTLS");
            return;
        }
        state_ = St::WaitProceed;
        send_raw("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        return;
    }
    if (!authed_) {
        if (purpose_ == Purpose::Register) {
            state_ = St::WaitRegister;
            send_raw("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>" +
                     user_ + "</username><password>" + opt.password +
                     "</password></query></iq>");
            return;
        }
        if (xml.find(">" + opt.mech + "<") == std::string_view::npos) {
            fail("mechanism " + opt.mech + " not offered");
            return;
        }
        std::string initial;
        if (opt.mech == "PLAIN") {
            initial = plain_message(user_, opt.password);
        } else {
            auto alg = opt.mech == "SCRAM-SHA-1" ? ScramAlg::Sha1 : ScramAlg::Sha256;
            scram_ = std::make_unique<ScramClient>(alg, user_, opt.password);
            initial = scram_->client_first();
        }
        state_ = St::WaitSasl;
        send_raw("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + opt.mech + "'>" +
                 base64_encode(initial) + "</auth>");
        return;
    }
    // RFC 6121 Appendix E: only an old server that does not mark <session/> optional needs it.
    if (auto p = xml.find("<session"); p != std::string_view::npos) {
        auto gt = xml.find('>', p);
        if (gt != std::string_view::npos && xml[gt - 1] != '/') {
            auto end = xml.find("</session>", gt);
            want_session_ = xml.substr(gt, end - gt).find("optional") == std::string_view::npos;
        } else {
            want_session_ = true;
        }
    }
    std::string resource = purpose_ == Purpose::Online
                               ? "r" + std::to_string(account_)
                               : "s" + std::to_string(w_.next_login_seq());
    state_ = St::WaitBind;
    send_raw("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
             resource + "</resource></bind></iq>");
}

void Conn::on_sasl(const ScanEvent& ev) {
    const auto xml = ev.xml;
    if (ev.name == "challenge") {
        if (!scram_) {
            fail("unexpected SASL challenge");
            return;
        }
        auto msg = base64_decode(own_text(xml));
        if (!msg) {
            fail("bad base64 in challenge");
            return;
        }
        if (scram_->iterations() == 0) {
            std::string err;
            if (!scram_->server_first(*msg, err)) {
                fail("SCRAM: " + err);
                return;
            }
            auto alg = w_.opt.mech == "SCRAM-SHA-1" ? ScramAlg::Sha1 : ScramAlg::Sha256;
            std::string salt(scram_->salt());
            auto iterations = scram_->iterations();
            if (!w_.opt.cold) {
                if (auto keys = w_.sh.cache.get(alg, w_.opt.password, salt, iterations)) {
                    continue_scram(*keys);
                    return;
                }
            }
            // PBKDF2 runs on the key-stretching pool so it never stalls this event loop.
            ++w_.st.kdf_runs;
            Shared* sh = &w_.sh;
            asio::post(sh->kdf_pool, [this, g = gen_, sh, alg, salt, iterations,
                                      pw = w_.opt.password, io = &w_.io] {
                auto keys = ScramCache::derive(alg, pw, salt, iterations);
                sh->cache.put(alg, pw, salt, iterations, keys);
                asio::post(*io, [this, g, keys] {
                    if (g == gen_ && state_ == St::WaitSasl) {
                        continue_scram(keys);
                    }
                });
            });
            return;
        }
        if (!scram_->verify_server_final(*msg)) {
            fail("SCRAM: bad server signature");
            return;
        }
        send_raw("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        return;
    }
    if (ev.name == "success") {
        if (scram_) {
            auto text = own_text(xml);
            if (!text.empty() && text != "=") {
                auto msg = base64_decode(text);
                if (!msg || !scram_->verify_server_final(*msg)) {
                    fail("SCRAM: bad server signature in success");
                    return;
                }
            }
        }
        scram_.reset();
        authed_ = true;
        sc_.restart();
        send_header();
        return;
    }
    if (ev.name == "failure") {
        fail("SASL failure: " + std::string(first_child_name(xml)));
    }
}

void Conn::continue_scram(const ScramKeys& keys) {
    send_raw("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
             base64_encode(scram_->client_final(keys)) + "</response>");
}

// A MUC join without history. Prosody creates rooms only for joins with the MUC <x/>; the
// creator (status 201) accepts the instant configuration at once (havend locks new rooms until
// then; Prosody runs with muc_room_locking = false), and whoever came in between retries.
void Conn::join_room() {
    send_raw("<presence to='" + room_ + "/" + room_nick_ +
             "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
}

void Conn::go_online() {
    state_ = St::Online;
    if (w_.opt.presence) {
        // Initial presence (RFC 6121 §4.2): servers deliver to available resources.
        send_raw("<presence/>");
    }
    if (w_.opt.rooms > 0) {
        const auto k = (static_cast<std::uint64_t>(local_index_) * w_.opt.threads + w_.index) %
                       w_.opt.rooms;
        room_ = "bench-room-" + std::to_string(k) + "@" + w_.opt.muc_domain;
        room_nick_ = "n" + std::to_string(w_.index) + "-" + std::to_string(local_index_);
        state_ = St::WaitRoom;
        join_room();
        return;
    }
    w_.on_ready(*this, now_ns() - t_start_);
}

void Conn::append_message(const std::string& to, std::int64_t t_ns) {
    out_ += "<message to='";
    out_ += to;
    out_ += to == room_ && !room_.empty() ? "' type='groupchat' id='m" : "' type='chat' id='m";
    append_num(out_, ++seq_);
    out_ += "'><body>hb ";
    append_num(out_, w_.index);
    out_ += ' ';
    append_num(out_, local_index_);
    out_ += ' ';
    append_num(out_, static_cast<std::uint64_t>(t_ns));
    out_ += ' ';
    out_ += w_.pad;
    out_ += "</body></message>";
}

bool Conn::check_deadline(std::int64_t now) {
    if (state_ == St::Idle || state_ == St::Online || now < deadline_) {
        return false;
    }
    fail(std::string("timeout in ") + state_name(state_));
    return true;
}

void Conn::close_gracefully() {
    if (state_ != St::Idle && state_ != St::Connecting && !handshaking_) {
        out_ += "</stream:stream>";
        flush();
        if (records_ && tls_on_ && state_ != St::Idle) {
            records_->seal_close_notify(wire_);  // best effort
            send_wire();
        } else if (ssl_ && tls_on_ && state_ != St::Idle) {
            SSL_shutdown(ssl_);  // close_notify, best effort
            drain_wbio();
            send_wire();
        }
    }
    close_socket();
}

void Conn::abort(std::string_view reason) { fail(std::string(reason)); }

void Conn::close_socket() {
    ++gen_;  // every pending callback of this connection is now stale
    if (ssl_) {
        SSL_free(ssl_);  // frees both BIOs
        ssl_ = nullptr;
        rbio_ = wbio_ = nullptr;
    }
    secrets_.reset();
    records_.reset();
    ERR_clear_error();
    boost::system::error_code ec;
    if (sock_.is_open()) {
        sock_.close(ec);
    }
    reading_ = write_waiting_ = false;
    handshaking_ = tls_on_ = false;
    state_ = St::Idle;
    if (out_.capacity() > 4096) {
        std::string().swap(out_);
    }
    if (wire_.capacity() > 4096) {
        std::string().swap(wire_);
    }
    out_.clear();
    wire_.clear();
    wire_off_ = 0;
}

void Conn::fail(std::string reason) {
    bool was_online = state_ == St::Online;
    close_socket();
    w_.on_failed(*this, reason, was_online);
}

// ---------------------------------------------------------------------------------------------
// Worker

Worker::Worker(Shared& shared, unsigned idx)
    : sh(shared),
      opt(shared.opt),
      index(idx),
      rbuf(64 * 1024),
      tick_timer_(io),
      house_timer_(io),
      rng_(0x9e3779b97f4a7c15ull ^ (idx * 0x2545F4914F6CDD1Dull + 1)) {
    // Padding so that the whole body is about body_bytes long.
    std::size_t fixed = 40;
    pad.assign(opt.body_bytes > fixed ? opt.body_bytes - fixed : 1, 'x');
    housekeeping();
}

Worker::~Worker() = default;

unsigned Worker::source_ip_for(std::uint64_t n) const {
    return opt.source_ips <= 1 ? 1 : 1 + static_cast<unsigned>(n % opt.source_ips);
}

void Worker::housekeeping() {
    if (stopping_) {
        return;
    }
    auto now = now_ns();
    for (auto& c : conns) {
        c->check_deadline(now);
    }
    house_timer_.expires_after(std::chrono::milliseconds(200));
    house_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) {
            housekeeping();
        }
    });
}

void Worker::start_online(std::vector<unsigned> accounts, unsigned concurrency) {
    pending_accounts_ = std::move(accounts);
    pending_next_ = 0;
    online_concurrency_ = std::max(1u, concurrency);
    conns.reserve(conns.size() + pending_accounts_.size());
    online.reserve(pending_accounts_.size());
    next_online();
}

void Worker::next_online() {
    while (!stopping_ && in_flight_ < online_concurrency_ &&
           pending_next_ < pending_accounts_.size()) {
        unsigned account = pending_accounts_[pending_next_++];
        conns.push_back(std::make_unique<Conn>(*this, static_cast<std::uint32_t>(conns.size())));
        ++in_flight_;
        conns.back()->start(Purpose::Online, account, source_ip_for(account));
    }
}

void Worker::start_cycles(Purpose purpose, unsigned slots) {
    cycle_purpose_ = purpose;
    while (conns.size() < slots) {
        conns.push_back(std::make_unique<Conn>(*this, static_cast<std::uint32_t>(conns.size())));
    }
    for (unsigned i = 0; i < slots; ++i) {
        next_cycle(*conns[i]);
    }
}

void Worker::next_cycle(Conn& c) {
    if (stopping_ || sh.phase.load() >= static_cast<int>(Phase::Draining)) {
        return;
    }
    auto n = sh.next_account.fetch_add(1);
    if (!sh.loop_accounts && n >= sh.account_limit) {
        return;
    }
    c.start(cycle_purpose_, static_cast<unsigned>(n % opt.users), source_ip_for(n));
}

void Worker::on_ready(Conn& c, std::int64_t latency_ns) {
    auto now = now_ns();
    if (in_window(now, sh.measure_from.load(std::memory_order_relaxed),
                  sh.measure_to.load(std::memory_order_relaxed))) {
        ++st.logins_in_window;
        st.login_latency.add_ns(latency_ns);
    } else if (sh.measure_from.load(std::memory_order_relaxed) == INT64_MAX) {
        st.login_latency.add_ns(latency_ns);  // setup logins: keep their latency too
    }
    st.ready.fetch_add(1, std::memory_order_relaxed);
    if (c.purpose() != Purpose::Online) {
        // Login storm: log straight out again and start the next login on this slot.
        c.close_gracefully();
        on_done(c);
        return;
    }
    --in_flight_;
    online.push_back(&c);
    next_online();
}

void Worker::on_done(Conn& c) {
    st.done.fetch_add(1, std::memory_order_relaxed);
    asio::post(io, [this, &c] { next_cycle(c); });
}

void Worker::on_registered(bool created) {
    if (created) {
        ++st.registered;
    } else {
        ++st.already_registered;
    }
}

void Worker::on_failed(Conn& c, std::string_view reason, bool was_online) {
    if (stopping_) {
        return;
    }
    if (was_online && c.purpose() == Purpose::Online) {
        st.lost.fetch_add(1, std::memory_order_relaxed);
        ++st.fail_reasons["lost: " + std::string(reason)];
        for (auto& p : online) {
            if (p == &c) {
                p = online.back();
                online.pop_back();
                break;
            }
        }
        return;
    }
    st.failed.fetch_add(1, std::memory_order_relaxed);
    ++st.fail_reasons[std::string(reason)];
    if (c.purpose() != Purpose::Online) {
        asio::post(io, [this, &c] { next_cycle(c); });
    } else {
        --in_flight_;
        next_online();
    }
}

Conn* Worker::pick_peer(const Conn& self) {
    std::size_t n = online.size();
    if (n < 2) {
        return nullptr;
    }
    while (true) {
        Conn* p = online[rand() % n];
        if (p != &self) {
            return p;
        }
    }
}

// A random online member of `supporter`; members whose connection was lost are dropped.
Conn* Worker::pick_member(Conn& supporter) {
    auto& m = supporter.members;
    while (!m.empty()) {
        std::size_t i = rand() % m.size();
        if (m[i]->online()) {
            return m[i];
        }
        m[i] = m.back();
        m.pop_back();
    }
    return nullptr;
}

// Whom `self` writes to next (a full JID, or the functional address), or null if nobody (yet).
// With --supporters only the policy's allowed paths: a supporter to its members, a member to
// its supporter once that one has written, or to the functional address.
const std::string* Worker::pick_target(Conn& self) {
    if (opt.rooms > 0) {
        return &self.room();
    }
    if (opt.supporters == 0) {
        Conn* p = pick_peer(self);
        return p ? &p->jid() : nullptr;
    }
    if (self.is_supporter) {
        Conn* p = pick_member(self);
        return p ? &p->jid() : nullptr;
    }
    if (!self.granted) {
        return nullptr;
    }
    if (opt.inquiry_percent > 0 && rand() % 100 < opt.inquiry_percent) {
        ++st.inquiries_sent;
        return &opt.functional_address;
    }
    return self.supporter && self.supporter->online() ? &self.supporter->jid() : nullptr;
}

void Worker::count_sent(std::int64_t t, std::int64_t from, std::int64_t to) {
    ++st.sent;
    if (in_window(t, from, to)) {
        ++st.sent_in_window;
    }
}

void Worker::mark_dirty(Conn& c) {
    if (!c.is_dirty) {
        c.is_dirty = true;
        dirty_.push_back(&c);
    }
    if (!flush_posted_) {
        flush_posted_ = true;
        asio::post(io, [this] { flush_dirty(); });
    }
}

void Worker::flush_dirty() {
    flush_posted_ = false;
    std::vector<Conn*> list;
    list.swap(dirty_);
    bool sending = opt.rate <= 0 && sh.phase.load(std::memory_order_relaxed) ==
                                        static_cast<int>(Phase::Sending);
    auto now = now_ns();
    auto from = sh.measure_from.load(std::memory_order_relaxed);
    auto to = sh.measure_to.load(std::memory_order_relaxed);
    for (Conn* c : list) {
        c->is_dirty = false;
        if (!c->online()) {
            continue;
        }
        if (sending) {
            while (c->credit > 0) {
                const std::string* p = pick_target(*c);
                if (!p) {
                    break;  // keeps its credit (a member: until its supporter writes)
                }
                c->append_message(*p, now);
                --c->credit;
                count_sent(now, from, to);
            }
        }
        c->flush();
    }
    list.clear();
    if (dirty_.empty()) {
        dirty_.swap(list);  // keep the capacity
    }
}

void Worker::start_traffic() {
    traffic_started_ = true;
    if (opt.supporters > 0) {
        start_groups();
    }
    if (opt.rate > 0) {
        rate_t0_ = 0;
        rate_sched_ = 0;
        tick();
        return;
    }
    for (Conn* c : online) {
        // A member gets its window when its supporter's first message arrives (on_message).
        c->credit = opt.supporters > 0 && !c->is_supporter ? 0 : opt.window;
        mark_dirty(*c);
    }
}

// --supporters: sorts the online connections into supporters and members (main.cpp puts a
// supporter and its members on one worker) and lets every supporter open its conversations.
void Worker::start_groups() {
    std::vector<Conn*> by_account(opt.supporters, nullptr);
    for (Conn* c : online) {
        if (c->account() < opt.supporters) {
            c->is_supporter = true;
            by_account[c->account()] = c;
        }
    }
    for (Conn* c : online) {
        if (!c->is_supporter) {
            c->supporter = by_account[c->account() % opt.supporters];
            if (c->supporter) {
                c->supporter->members.push_back(c);
            }
        }
    }
    for (Conn* c : by_account) {
        if (c) {
            open_conversations(*c);
        }
    }
}

// One message to each of the supporter's members: the policy lets a member answer only a
// supporter who wrote first. In the closed loop these are the supporter's first window (its
// credit comes back as they arrive), topped up to --window if it has fewer members.
void Worker::open_conversations(Conn& supporter) {
    const auto now = now_ns();
    const auto from = sh.measure_from.load(std::memory_order_relaxed);
    const auto to = sh.measure_to.load(std::memory_order_relaxed);
    for (Conn* m : supporter.members) {
        supporter.append_message(m->jid(), now);
        count_sent(now, from, to);
    }
    const auto opened = static_cast<unsigned>(supporter.members.size());
    supporter.credit = opt.rate > 0 || opened >= opt.window ? 0 : opt.window - opened;
    mark_dirty(supporter);
}

void Worker::tick() {
    if (stopping_ || sh.phase.load() != static_cast<int>(Phase::Sending)) {
        return;
    }
    auto now = now_ns();
    if (rate_t0_ == 0) {
        rate_t0_ = now;
    }
    double per_worker = opt.rate / opt.threads;
    auto target = static_cast<std::uint64_t>(static_cast<double>(now - rate_t0_) * per_worker / 1e9);
    auto from = sh.measure_from.load(std::memory_order_relaxed);
    auto to = sh.measure_to.load(std::memory_order_relaxed);
    std::size_t n = online.size();
    while (rate_sched_ < target && n >= 2) {
        // The intended send time, not the time we got round to it (no coordinated omission).
        auto t = rate_t0_ + static_cast<std::int64_t>(static_cast<double>(rate_sched_) * 1e9 /
                                                      per_worker);
        ++rate_sched_;
        Conn* s = online[rand() % n];
        if (s->pending_out() > 1024 * 1024) {
            ++st.send_skipped;
            continue;
        }
        const std::string* p = pick_target(*s);
        if (!p && s->supporter && s->supporter->online() &&
            s->supporter->pending_out() <= 1024 * 1024) {
            // A member its supporter has not reached yet: the supporter writes to it instead.
            p = &s->jid();
            s = s->supporter;
        }
        if (!p) {
            ++st.send_skipped;  // nobody to write to, or the member's supporter is backed up
            continue;
        }
        s->append_message(*p, t);
        count_sent(t, from, to);
        mark_dirty(*s);
    }
    tick_timer_.expires_after(std::chrono::microseconds(opt.tick_us));
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) {
            tick();
        }
    });
}

void Worker::on_message(Conn& receiver, std::string_view xml) {
    bool is_error = tag_attr(xml, "type") == "error";
    auto body = child_text(xml, "body");
    if (!body.starts_with("hb ")) {
        if (is_error) {
            ++st.msg_errors;  // a bounce without our payload: cannot credit the sender
            ++st.fail_reasons["message error: " + std::string(error_condition(xml))];
        }
        return;
    }
    body.remove_prefix(3);
    std::uint64_t vals[3] = {0, 0, 0};
    const char* p = body.data();
    const char* end = body.data() + body.size();
    for (auto& v : vals) {
        auto r = std::from_chars(p, end, v);
        if (r.ec != std::errc()) {
            return;
        }
        p = r.ptr + (r.ptr < end ? 1 : 0);
    }
    auto now = now_ns();
    if (is_error) {
        ++st.msg_errors;
        ++st.fail_reasons["message error: " + std::string(error_condition(xml))];
    } else {
        if (opt.supporters > 0) {
            on_policy_delivery(receiver, xml, vals[0], vals[1]);
        }
        ++st.received;
        auto t = static_cast<std::int64_t>(vals[2]);
        if (in_window(now, sh.measure_from.load(std::memory_order_relaxed),
                      sh.measure_to.load(std::memory_order_relaxed))) {
            ++st.received_in_window;
        }
        if (in_window(t, sh.measure_from.load(std::memory_order_relaxed),
                      sh.measure_to.load(std::memory_order_relaxed))) {
            st.msg_latency.add_ns(now - t);
        }
    }
    // In a room every occupant gets a copy: only the sender's own copy (the reflection, or an
    // error) gives its credit back, or one message would buy N.
    if (opt.rate <= 0 && (opt.rooms == 0 || is_error ||
                          (vals[0] == index && vals[1] == receiver.local_index()))) {
        credit_sender(vals[0], vals[1]);
    }
}

// --supporters: a member's first message from its supporter opens the conversation (the
// server's grant), so the member may send from now on; an inquiry copy is counted.
void Worker::on_policy_delivery(Conn& receiver, std::string_view xml, std::uint64_t worker,
                                   std::uint64_t local) {
    if (receiver.is_supporter) {
        // The functional address forwards from an inquiry JID, ADDRESS-LOCALPART+TOKEN@...
        auto fa_local = std::string_view(opt.functional_address).substr(
            0, opt.functional_address.find('@'));
        auto from = tag_attr(xml, "from");
        if (!fa_local.empty() && from.starts_with(fa_local) &&
            from.substr(fa_local.size()).starts_with("+")) {
            ++st.inquiries_delivered;
        }
        return;
    }
    if (receiver.granted || worker != index || local >= conns.size() ||
        conns[local].get() != receiver.supporter) {
        return;
    }
    receiver.granted = true;
    ++st.granted;
    if (opt.rate <= 0) {
        receiver.credit += opt.window;
        mark_dirty(receiver);
    }
}

// The closed loop: a delivered (or bounced) message gives its sender one credit back.
void Worker::credit_sender(std::uint64_t worker, std::uint64_t local) {
    if (worker == index) {
        if (local < conns.size()) {
            Conn& s = *conns[local];
            ++s.credit;
            mark_dirty(s);
        }
        return;
    }
    // Only a functional address delivers to another worker's connection (the staff's): the
    // credit goes back on the sender's own thread.
    if (worker < sh.workers.size()) {
        Worker* w = sh.workers[worker];
        asio::post(w->io, [w, local] { w->credit_sender(w->index, local); });
    }
}

void Worker::ping_all() {
    for (Conn* c : online) {
        c->send_raw("<iq type='get' id='alive' to='" + opt.domain +
                    "'><ping xmlns='urn:xmpp:ping'/></iq>");
    }
}

void Worker::shutdown() {
    stopping_ = true;
    tick_timer_.cancel();
    house_timer_.cancel();
    for (auto& c : conns) {
        if (!c->idle()) {
            c->close_gracefully();
        }
    }
}

}  // namespace bench
