// XEP-0160: Best Practices for Handling Offline Messages — store, deliver on available presence.
//
// The router fires "message/offline" for a chat/normal message to an existing local account with
// no available resource. Worth storing is a message with a body or any payload other than pure
// XEP-0085 chat states and routing metadata; XEP-0334 hints override that (<no-store/> is never
// stored and bounces like any unstored message, <store/> is always stored). A full queue bounces
// with <service-unavailable/> (XEP-0160 §2 step 3), whether by count or by bytes; a stanza larger
// than [limits] max_stanza_bytes once serialised is never stored (policy-violation). When a
// resource sends its first available presence with a non-negative priority, every stored message
// goes to that resource with a XEP-0203 delay stamp and is then deleted (deliver-then-delete). The
// store commits each message before the sender's stream moves on, so a stored message survives a
// crash of havend; while another process locks the database, OfflineStore queues it in memory
// instead of waiting (server/storage/README.md), and a full queue answers <resource-constraint/>
// (type wait).
#include <chrono>
#include <cstdint>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/offline_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "server/xmpp/stanza.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view ns_hints = "urn:xmpp:hints";  // XEP-0334
constexpr std::string_view ns_sid = "urn:xmpp:sid:0";     // XEP-0359 origin-id / stanza-id

std::int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Payload that means nothing without the live conversation around it.
bool is_ephemeral(const Element& child) {
    const auto& ns = child.ns();
    if (ns == ns::chatstates || ns == ns_hints || ns == ns_sid) {
        return true;
    }
    // <thread/> only correlates other content (RFC 6121 §5.2.5).
    return child.name() == "thread" && (ns == ns::client || ns.empty());
}

enum class Verdict { Store, Drop, Refuse };

Verdict classify(const Element& message) {
    // XEP-0334 §4: no-store forbids even temporary storage for later delivery. We bounce it like
    // any message we cannot store (RFC 6121 §8.5.2.2.1), so the sender knows it was not delivered.
    if (message.child("no-store", ns_hints)) {
        return Verdict::Refuse;
    }
    if (message.child("store", ns_hints)) {
        return Verdict::Store;  // XEP-0334 §4: the sender explicitly asks for storage
    }
    for (const Element* child : message.children()) {
        if (!is_ephemeral(*child)) {
            return Verdict::Store;  // a body, subject, receipt, encrypted payload, ...
        }
    }
    // XEP-0160 §3 / XEP-0085: standalone chat-state notifications are not stored offline; they
    // are dropped silently rather than bounced, since a bounce would only leak "offline".
    return Verdict::Drop;
}

class Offline {
public:
    explicit Offline(ModuleContext& m)
        : server_(m.server()),
          log_(m.log()),
          quota_(static_cast<std::size_t>(m.opt_int("quota"))),
          quota_bytes_(static_cast<std::size_t>(m.opt_int("quota_bytes"))),
          max_stanza_bytes_(
              static_cast<std::size_t>(m.server().config().get_int("limits", "max_stanza_bytes"))),
          max_age_days_(m.opt_int("max_age_days")) {
        m.add_feature(std::string(ns::offline));
        m.hook("message/offline", [this](StanzaEvent& ev) { return store(ev); }, prio::fallback);
        auto id = server_.initial_presence.connect([this](Session& s) { deliver(s); });
        m.own_connection([&s = server_, id] { s.initial_presence.disconnect(id); });
        if (max_age_days_ > 0) {
            purge();
            m.every(std::chrono::hours(1), [this] { purge(); });
        }
    }

private:
    Flow store(StanzaEvent& ev) {
        auto type = ev.type();
        if (!(type.empty() || type == "chat" || type == "normal")) {
            return Flow::Continue;  // XEP-0160 §3: groupchat, headline and error are not stored
        }
        switch (classify(ev.stanza)) {
            case Verdict::Drop: return Flow::Stop;
            case Verdict::Refuse: return Flow::Continue;  // the router bounces it
            case Verdict::Store: break;
        }
        const std::string& user = ev.to.local();
        if (quota_ == 0) {
            return Flow::Continue;  // offline storage switched off: plain service-unavailable
        }
        // Stored exactly as routed ('from' stamped by the router), with its own xmlns.
        const std::string payload = xml::serialize(ev.stanza);
        auto lang = ev.lang();
        if (payload.size() > max_stanza_bytes_) {
            // Never store more than a client may send in one stanza (issue 10 §2): whatever the
            // serialiser made of it, a stored row stays within [limits] max_stanza_bytes.
            ev.reply_error("policy-violation", server_.texts().get("stanza-too-large", lang),
                           server_.texts().pick_lang("stanza-too-large", lang));
            return Flow::Stop;
        }
        switch (server_.offline().push(user, now_unix(), payload, {quota_, quota_bytes_})) {
            case storage::PushResult::Stored:
            case storage::PushResult::Queued:
                server_.offline_stored.emit(user, ev.stanza);
                return Flow::Stop;
            case storage::PushResult::Full:
                // XEP-0160 §2 step 3: a full queue (by count or by bytes) is answered with
                // <service-unavailable/>.
                ev.reply_error("service-unavailable", server_.texts().get("offline-quota", lang),
                               server_.texts().pick_lang("offline-quota", lang));
                log_.debug("offline: quota reached for a user, message bounced");
                return Flow::Stop;
            case storage::PushResult::Overloaded:
                // The database is locked by another process and the in-memory queue is full:
                // a temporary condition (RFC 6120 §8.3.3.18, type wait), never a blocked loop.
                ev.reply_error("resource-constraint", server_.texts().get("storage-busy", lang),
                               server_.texts().pick_lang("storage-busy", lang));
                log_.warn("offline: database locked and write queue full, message bounced");
                return Flow::Stop;
            case storage::PushResult::NoAccount: break;
        }
        return Flow::Continue;  // the account vanished meanwhile: bounce without a quota text
    }

    void deliver(Session& session) {
        const std::string& user = session.jid().local();
        std::vector<storage::OfflineMessage> messages;
        try {
            messages = server_.offline().list(user);
        } catch (const std::exception& e) {
            // Kept in the store: a wrong key file must not turn into lost messages.
            log_.error("offline: cannot load stored messages: ", e.what());
            return;
        }
        if (messages.empty()) {
            return;
        }
        std::vector<std::int64_t> done;
        done.reserve(messages.size());
        for (const auto& stored : messages) {
            auto stanza = xml::parse_fragment(stored.payload);
            if (!stanza) {
                // Cannot happen for what we wrote; dropping it keeps one bad row from blocking
                // the queue forever.
                log_.error("offline: stored message ", stored.id, " does not parse; dropped");
                done.push_back(stored.id);
                continue;
            }
            // XEP-0160 §2 / XEP-0203: say when and by whom the message was held.
            stanza->add(Element("delay", std::string(ns::delay))
                            .attr("from", server_.domain())
                            .attr("stamp", xep82_datetime(stored.stamp))
                            .text("Offline Storage"));
            session.send(*stanza);
            done.push_back(stored.id);
        }
        try {
            server_.offline().remove(user, done);
        } catch (const std::exception& e) {
            log_.error("offline: cannot delete delivered messages: ", e.what());
            return;
        }
        log_.debug("offline: delivered ", done.size(), " stored message(s)");
    }

    void purge() {
        auto removed = server_.offline().remove_older_than(now_unix() - max_age_days_ * 86400);
        if (removed > 0) {
            log_.info("offline: purged ", removed, " message(s) older than ", max_age_days_,
                      " days");
        }
    }

    Server& server_;
    const Logger& log_;
    std::size_t quota_;
    std::size_t quota_bytes_;
    std::size_t max_stanza_bytes_;
    std::int64_t max_age_days_;
};

std::shared_ptr<Offline> load(ModuleContext& m) { return std::make_shared<Offline>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(offline, haven::xeps::load)
