// XEP-0077: In-Band Registration — account creation before login, password change and account
// removal after it.
//
// Before authentication (the c2s session fires "iq-unauthenticated/jabber:iq:register" only on
// TLS streams) an entity may create one account per stream, and only when [registration] enabled
// is true; otherwise the session answers <service-unavailable/> itself. After authentication a
// user may always read its registration, change its password (§3.3) and cancel its account
// (§3.2), whatever [registration] enabled says: those act only on the requester's own account.
// A password change ends the account's other streams with <reset/>.
// Password hashing (PBKDF2) runs off the event loop through Server::offload.
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "server/auth/precis.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/net/c2s_session.hpp"
#include "server/storage/error.hpp"
#include "server/xmpp/namespaces.hpp"
#include "server/xmpp/stanza.hpp"
#include "xeps/xep0077_register.hpp"

namespace haven::xeps {
namespace {

// XEP-0077 §3.1.1: a server MAY refuse an entity that tries to register too many times.
constexpr int max_attempts_per_stream = 5;

Element query() { return Element("query", std::string(ns::register_)); }

// RFC 6120 §8.3: reply directly to a session (no routing: before login it has no address).
void send_error(Session& s, const Element& iq, std::string_view condition,
                std::string_view text = {}) {
    if (!is_error_or_result(iq)) {
        s.send(make_error(iq, condition, text, text.empty() ? std::string_view{} : "en"));
    }
}

// The normalised localpart, or nothing when it is not a valid one (RFC 7622 §3.3).
std::optional<std::string> normalise_username(const Server& server, std::string_view username) {
    if (username.empty() || username.find_first_of("@/") != std::string_view::npos) {
        return std::nullopt;
    }
    auto jid = Jid::make(username, server.domain());
    if (!jid || jid->local().empty()) {
        return std::nullopt;
    }
    return jid->local();
}

class Register : public std::enable_shared_from_this<Register>, public NameReservations {
public:
    explicit Register(ModuleContext& m)
        : server_(m.server()),
          log_(m.log()),
          max_per_window_(static_cast<std::size_t>(m.opt_int("max_per_window"))),
          window_(std::chrono::seconds(m.opt_int("window_s"))) {
        if (server_.config().get_bool("registration", "enabled")) {
            // Not hooked when disabled: the c2s session then answers <service-unavailable/>
            // (XEP-0077 §3.1), and no stream feature is offered.
            m.hook("iq-unauthenticated/" + std::string(ns::register_),
                   [this](StanzaEvent& ev) { return unauthenticated(ev); });
            // XEP-0077 §4: the stream feature, where the stream may register (not on a
            // cleartext stream while TLS is required: the c2s session asks only then).
            m.add_stream_extension(stream_feature(
                StreamStage::BeforeAuth, Element("register", std::string(ns::register_feature))));
            m.every(std::chrono::minutes(1), [this] { prune(); });
        }
        // Cancelling an account (§3.2) deletes it on the loop: a lock answers type wait (the
        // router's guard).
        auto handler = [this](StanzaEvent& ev) { return authenticated(ev); };
        for (auto type : {IqType::Get, IqType::Set}) {
            m.hook_iq(type, Target::Host, ns::register_, handler);
            m.hook_iq(type, Target::Bare, ns::register_, handler);
        }
        server_.provide<NameReservations>(this);
    }
    ~Register() override { server_.withdraw<NameReservations>(); }

    std::uint64_t add(Predicate reserved) override {
        reservations_.emplace(++next_reservation_, std::move(reserved));
        return next_reservation_;
    }
    void remove(std::uint64_t handle) override { reservations_.erase(handle); }

private:
    // ---- before authentication: XEP-0077 §3.1 ----

    Flow unauthenticated(StanzaEvent& ev) {
        if (!ev.origin) {
            return Flow::Continue;
        }
        Session& session = *ev.origin;
        const Element& iq = ev.stanza;
        const Element* q = iq.child("query", ns::register_);
        if (!q) {
            return Flow::Continue;
        }
        if (ev.type() == "get") {
            // XEP-0077 §3.1 Example 2: the fields we need.
            auto result = make_result(iq);
            auto& out = result.add(query());
            out.add(Element("instructions", std::string(ns::register_)))
                .text("Choose a username and password for use with this server.");
            out.add(Element("username", std::string(ns::register_)));
            out.add(Element("password", std::string(ns::register_)));
            session.send(result);
            return Flow::Stop;
        }
        if (ev.type() != "set") {
            return Flow::Stop;  // results and errors from an unauthenticated peer: ignore
        }
        if (q->child("remove", ns::register_)) {
            // XEP-0077 §3.2: nobody is registered on this stream yet.
            send_error(session, iq, "unexpected-request");
            return Flow::Stop;
        }
        auto& stream = streams_[session.id()];
        if (stream.session.expired()) {
            stream.session = session.weak_from_this();
        }
        if (stream.registered || stream.pending) {
            // XEP-0077 §3.1.1: one identity per stream.
            send_error(session, iq, "not-acceptable", "one registration per connection");
            return Flow::Stop;
        }
        if (++stream.attempts > max_attempts_per_stream) {
            send_error(session, iq, "not-acceptable", "too many registration attempts");
            return Flow::Stop;
        }
        auto local = normalise_username(server_, q->child_text("username", ns::register_));
        auto password = auth::prepare_password(q->child_text("password", ns::register_));
        if (!local || !password) {
            // XEP-0077 §3.1: required information missing or unusable.
            send_error(session, iq, "not-acceptable",
                       !local ? "invalid username" : "invalid password");
            return Flow::Stop;
        }
        // No existence oracle (issue 11): the rate limit comes before anything about the name,
        // every attempt counts against it, and a taken or reserved name is found only after
        // the same password hashing a free one gets, so the two differ only in the <conflict/>
        // the protocol requires on the real attempt (XEP-0077 §3.1).
        auto now = std::chrono::steady_clock::now();
        prune_window(now);
        if (max_per_window_ > 0 && recent_.size() >= max_per_window_) {
            send_error(session, iq, "resource-constraint",
                       "too many registrations right now; try again later");
            log_.warn("register: registration rate limit reached");
            return Flow::Stop;
        }
        if (max_per_window_ > 0) {
            recent_.push_back(now);
        }
        stream.pending = true;
        auto creds = std::make_shared<std::optional<auth::CredentialSet>>();
        server_.offload(
            [creds, &accounts = server_.accounts(), pw = std::move(*password)] {
                try {
                    *creds = accounts.derive(pw);
                } catch (const std::exception&) {
                    // stays empty: answered with internal-server-error below
                }
            },
            [weak = weak_from_this(), session = session.weak_from_this(), id = session.id(),
             iq = Element(iq), local = *local, creds] {
                if (auto self = weak.lock()) {
                    self->finish_registration(id, session.lock(), iq, local, *creds);
                }
            });
        return Flow::Stop;
    }

    void finish_registration(std::uint64_t id, const std::shared_ptr<Session>& session,
                             const Element& iq, const std::string& local,
                             const std::optional<auth::CredentialSet>& creds) {
        auto it = streams_.find(id);
        if (it != streams_.end()) {
            it->second.pending = false;
        }
        if (!session) {
            return;  // the stream is gone: nobody would learn of the account, so don't create it
        }
        if (!creds) {
            send_error(*session, iq, "internal-server-error");
            return;
        }
        bool created = false;
        try {
            created = !reserved(local) && server_.accounts().create(local, *creds);
        } catch (const storage::StorageError& e) {
            // Runs after offload(), outside the router's guard: nothing may escape to io.run().
            // A database locked by another process is temporary (type wait): try again.
            log_.warn("register: cannot store the new account: ", e.what());
            send_error(*session, iq, e.busy() ? "resource-constraint" : "internal-server-error");
            return;
        }
        if (!created) {
            send_error(*session, iq, "conflict");  // taken, reserved, or taken while hashing
            return;
        }
        if (it != streams_.end()) {
            it->second.registered = true;
        }
        log_.info("register: account created in-band");
        server_.user_created.emit(local);
        session->send(make_result(iq));
    }

    // ---- after authentication: XEP-0077 §3.2 / §3.3 on the requester's own account ----

    Flow authenticated(StanzaEvent& ev) {
        // Only a local user's own session, addressing its server or its own bare JID.
        if (!ev.origin || !ev.origin->bound() || !server_.is_local(ev.from) ||
            (ev.target == RouteTarget::Bare && ev.to.bare() != ev.from.bare())) {
            return Flow::Continue;
        }
        const Element* q = ev.stanza.child("query", ns::register_);
        if (!q) {
            return Flow::Continue;
        }
        const std::string local = ev.from.local();
        if (ev.type() == "get") {
            // XEP-0077 §3.1: an already registered entity gets <registered/> and its data.
            auto result = make_result(ev.stanza);
            auto& out = result.add(query());
            out.add(Element("registered", std::string(ns::register_)));
            out.add(Element("username", std::string(ns::register_))).text(local);
            ev.reply(std::move(result));
            return Flow::Stop;
        }
        if (q->child("remove", ns::register_)) {
            return remove(ev, *q, local);
        }
        return change_password(ev, *q, local);
    }

    Flow remove(StanzaEvent& ev, const Element& q, const std::string& local) {
        if (q.children().size() != 1) {
            ev.reply_error("bad-request");  // XEP-0077 §3.2: <remove/> must be the only child
            return Flow::Stop;
        }
        // XEP-0077 §3.2: reply first, then end every session with <not-authorized/> (done by
        // delete_user, which also erases all the account's data).
        ev.reply(make_result(ev.stanza));
        log_.info("register: account cancelled in-band");
        server_.delete_user(local);
        return Flow::Stop;
    }

    Flow change_password(StanzaEvent& ev, const Element& q, const std::string& local) {
        // XEP-0077 §3.3: deployments MAY refuse password changes over unencrypted streams.
        if (auto* c2s = dynamic_cast<net::C2sSession*>(ev.origin); c2s && !c2s->secure()) {
            ev.reply_error("not-authorized", "password changes need an encrypted stream", "en");
            return Flow::Stop;
        }
        if (const auto* u = q.child("username", ns::register_)) {
            auto given = normalise_username(server_, u->text());
            if (!given || *given != local) {
                ev.reply_error("not-allowed", "only your own password can be changed", "en");
                return Flow::Stop;
            }
        }
        // XEP-0077 §3.3: an empty password never replaces the existing one.
        auto password = auth::prepare_password(q.child_text("password", ns::register_));
        if (!password) {
            ev.reply_error("bad-request", "a new password is required", "en");
            return Flow::Stop;
        }
        Session& session = *ev.origin;
        if (!changing_.insert(session.id()).second) {
            ev.reply_error("resource-constraint", "a password change is already running", "en");
            return Flow::Stop;
        }
        auto creds = std::make_shared<std::optional<auth::CredentialSet>>();
        server_.offload(
            [creds, &accounts = server_.accounts(), pw = std::move(*password)] {
                try {
                    *creds = accounts.derive(pw);
                } catch (const std::exception&) {
                }
            },
            [weak = weak_from_this(), session = session.weak_from_this(), id = session.id(),
             iq = Element(ev.stanza), local, creds] {
                auto self = weak.lock();
                if (!self) {
                    return;
                }
                self->changing_.erase(id);
                auto s = session.lock();
                bool ok = false;
                bool busy = false;
                try {
                    ok = *creds && self->server_.accounts().set_credentials(local, **creds);
                } catch (const storage::StorageError& e) {
                    // Outside the router's guard (after offload): never let it reach io.run().
                    self->log_.warn("register: cannot store the new password: ", e.what());
                    busy = e.busy();
                }
                if (ok) {
                    self->log_.info("register: password changed in-band");
                    // A changed password revokes the old one: streams that logged in with it
                    // end with <reset/> (RFC 6120 §4.9.3.16: the security context changed), so
                    // a leaked password stops working everywhere once its owner changes it.
                    // The requesting stream stays open.
                    self->server_.close_sessions_of(local, "reset", "password changed", id);
                }
                if (!s) {
                    return;
                }
                if (ok) {
                    s->send(make_result(iq));
                } else {
                    send_error(*s, iq, busy ? "resource-constraint" : "internal-server-error");
                }
            });
        return Flow::Stop;
    }

    bool reserved(std::string_view local) const {
        for (const auto& [handle, predicate] : reservations_) {
            if (predicate(local)) {
                return true;
            }
        }
        return false;
    }

    // ---- throttling state ----

    void prune_window(std::chrono::steady_clock::time_point now) {
        while (!recent_.empty() && now - recent_.front() >= window_) {
            recent_.pop_front();
        }
    }

    void prune() {
        prune_window(std::chrono::steady_clock::now());
        std::erase_if(streams_, [](const auto& kv) {
            return !kv.second.pending && kv.second.session.expired();
        });
    }

    struct Stream {
        std::weak_ptr<Session> session;
        int attempts = 0;
        bool pending = false;
        bool registered = false;
    };

    Server& server_;
    const Logger& log_;
    std::size_t max_per_window_;
    std::chrono::seconds window_;
    std::deque<std::chrono::steady_clock::time_point> recent_;  // accounts created in window_
    std::unordered_map<std::uint64_t, Stream> streams_;          // by session id
    std::unordered_set<std::uint64_t> changing_;                 // sessions hashing a password
    std::map<std::uint64_t, Predicate> reservations_;            // NameReservations
    std::uint64_t next_reservation_ = 0;
};

std::shared_ptr<Register> load(ModuleContext& m) { return std::make_shared<Register>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(inband_register, haven::xeps::load)
