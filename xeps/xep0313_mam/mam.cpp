// XEP-0313 Message Archive Management with XEP-0059 paging, XEP-0359 stanza ids and XEP-0441
// preferences. The archive is a policy, not a given: [archive] enabled, retention_days, and
// vetoes from other modules (the peer-support rule for conversations with members).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/post.hpp>

#include "server/core/module.hpp"
#include "server/core/random_id.hpp"
#include "server/core/server.hpp"
#include "server/storage/error.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "server/xmpp/stanza.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0313_mam/archive_store.hpp"
#include "xeps/xep0313_mam/mam.hpp"

namespace haven::xeps::mam {
namespace {

constexpr std::string_view ns_mam = "urn:xmpp:mam:2";
constexpr std::string_view ns_mam_extended = "urn:xmpp:mam:2#extended";
constexpr std::string_view ns_rsm = "http://jabber.org/protocol/rsm";
constexpr std::string_view ns_sid = "urn:xmpp:sid:0";
constexpr std::string_view ns_forward = "urn:xmpp:forward:0";
constexpr std::string_view ns_hints = "urn:xmpp:hints";
constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";
constexpr std::string_view prefs_store = "mam.prefs";
constexpr std::size_t max_ids = 100;  // ids in one query (#extended)
constexpr std::size_t max_queryid_bytes = 256;
constexpr std::size_t max_pref_jids = 1000;

// XEP-0313 §5.1.1: messages a person wrote (a body; encrypted ones carry a fallback body), not
// groupchat (the room archives those), errors, carbon copies or what the sender asked not to
// keep (XEP-0334).
bool archivable(const Element& m) {
    auto type = m.attr("type");
    return (type.empty() || type == "chat" || type == "normal") && m.child("body", ns::client) &&
           !m.child("no-store", ns_hints) && !m.child("no-permanent-store", ns_hints) &&
           !m.child("sent", ns_carbons) && !m.child("received", ns_carbons);
}

// Removes the stanza-id elements set by `by` (XEP-0359 §5), or all of them (empty `by`).
void drop_stanza_ids(Element& message, std::string_view by) {
    std::erase_if(message.nodes(), [by](const xml::Node& n) {
        return n.element && n.element->name() == "stanza-id" && n.element->ns() == ns_sid &&
               (by.empty() || n.element->attr("by") == by);
    });
}

struct Prefs {
    std::string default_mode = "always";  // always | never | roster
    std::unordered_set<std::string> always, never;
};

class Mam final : public Archive {
public:
    explicit Mam(ModuleContext& m)
        : m_(m),
          server_(m.server()),
          store_(server_.db(), server_.secret_box()),
          retention_(std::chrono::days(m.opt_int("retention_days"))),
          max_page_(static_cast<std::size_t>(m.opt_int("max_page"))) {
        for (auto f : {ns_mam, ns_mam_extended, ns_sid}) {
            m.add_account_feature(std::string(f));
        }
        // Inbound: after the policy (prio::policy) let it through, before delivery, so that
        // every copy carries the archive's id.
        for (auto target : {RouteTarget::Bare, RouteTarget::Full}) {
            m.hook(
                StanzaKind::Message, target, [this](StanzaEvent& e) { return inbound(e); },
                prio::normal + 50);
            // Outbound, the sender's own archive: after the policy and blocking refused what
            // they refuse.
            m.hook_outbound(
                StanzaKind::Message, target, [this](StanzaEvent& e) { return outbound(e); },
                prio::normal - 120);
        }
        m.hook_outbound(
            StanzaKind::Message, RouteTarget::Remote,
            [this](StanzaEvent& e) { return outbound(e); }, prio::normal - 120);
        for (auto type : {IqType::Get, IqType::Set}) {
            m.hook_iq(type, Target::Bare, ns_mam, [this](StanzaEvent& e) { return iq(e); });
        }
        auto deleted =
            server_.user_deleted.connect([this](const std::string& user) { prefs_.erase(user); });
        auto advanced = server_.clock_advanced.connect([this] { purge(); });
        m.own_connection([&s = server_, deleted, advanced] {
            s.user_deleted.disconnect(deleted);
            s.clock_advanced.disconnect(advanced);
        });
        m.every(std::chrono::minutes(10), [this] { purge(); });
        m.every(std::chrono::milliseconds(100), [this] {
            if (!pending_.empty()) {
                flush_pending();
            }
        });
        purge();
        server_.provide<Archive>(this);
    }
    ~Mam() override { server_.withdraw<Archive>(); }

    std::uint64_t add_veto(Veto veto) override {
        vetoes_.emplace_back(++next_veto_, std::move(veto));
        return next_veto_;
    }
    void remove_veto(std::uint64_t handle) override {
        std::erase_if(vetoes_, [handle](const auto& v) { return v.first == handle; });
    }

private:
    // ---- archiving ----

    // wanted(), but a storage failure (reading the preferences) means "not archived": the
    // message itself must still be delivered.
    bool wanted_safely(const Jid& owner, const Jid& with) {
        try {
            return wanted(owner, with);
        } catch (const storage::StorageError& e) {
            m_.log().debug("archive: preferences unreadable, not archived: ", e.what());
            return false;
        }
    }

    // `owner`: the local account's bare JID, as routing already parsed it (no JID is built
    // again per message).
    bool wanted(const Jid& owner, const Jid& with) {
        for (const auto& [id, veto] : vetoes_) {
            if (veto(owner, with)) {
                return false;
            }
        }
        const auto& p = prefs(owner.local());
        const auto bare = with.bare().str();
        if (p.never.contains(bare)) {
            return false;
        }
        if (p.always.contains(bare) || p.default_mode == "always") {
            return true;
        }
        return p.default_mode == "roster" && server_.roster().get(owner.local(), bare).has_value();
    }

    // Archiving never stands in the way of delivery: while another process holds the
    // database, entries wait in memory (bounded) and a timer writes them; any other storage
    // failure (an account deleted a moment ago, a broken disk) costs the archive entry only.
    void archive(const std::string& owner, const Jid& with, const std::string& id,
                 const Element& message) {
        queue(Pending{owner, id, server_.clock().unix_seconds(), with.bare().str(), with.str(),
                      xml::serialize(message)});
        // Written at the end of this loop turn, in one transaction: a busy server writes
        // many entries per commit instead of one commit per message.
        schedule_flush();
    }

    struct Pending {
        std::string owner, id;
        std::int64_t stamp;
        std::string with_bare, with_full, payload;
    };
    void write(const Pending& p) {
        store_.add(p.owner, p.id, p.stamp, p.with_bare, p.with_full, p.payload);
    }
    void queue(Pending p) {
        if (pending_.size() >= max_pending ||
            pending_bytes_ + p.payload.size() > max_pending_bytes) {
            if (!dropped_warned_) {
                m_.log().warn("archive: database locked for long, archive entries dropped");
                dropped_warned_ = true;
            }
            return;
        }
        pending_bytes_ += p.payload.size();
        pending_.push_back(std::move(p));
    }
    // Writes what waits, one transaction per loop turn that stops after about 1 ms (a backlog
    // from a long lock must not stall the loop either: it drains over the next turns), never
    // waiting for a lock (an archive entry can wait in memory, a message cannot). True once
    // nothing waits.
    static constexpr std::size_t check_every = 16;
    static constexpr std::chrono::microseconds turn_budget{1000};
    bool flush_pending(bool all = false) {
        while (!pending_.empty()) {
            if (!flush_batch()) {
                return false;
            }
            if (!all && !pending_.empty()) {
                schedule_flush();  // the rest on the next turn
                return false;
            }
        }
        dropped_warned_ = false;
        return true;
    }

    void schedule_flush() {
        if (flush_posted_ || locked_) {
            return;  // while the database is locked, only the 100 ms timer tries
        }
        flush_posted_ = true;
        boost::asio::post(server_.io(), [this, alive = std::weak_ptr<bool>(alive_)] {
            if (alive.lock()) {
                flush_posted_ = false;
                flush_pending();
            }
        });
    }

    bool flush_batch() {
        std::size_t n = 0;
        const auto deadline = std::chrono::steady_clock::now() + turn_budget;
        try {
            storage::ScopedBusyTimeout no_wait(server_.db(), std::chrono::milliseconds(0));
            storage::Transaction tx(server_.db());
            for (; n < pending_.size(); ++n) {
                // The time budget holds only while a backlog from a lock drains: otherwise a
                // turn writes what it archived, or a flood would pile entries up in memory.
                if (draining_ && n > 0 && n % check_every == 0 &&
                    std::chrono::steady_clock::now() > deadline) {
                    break;
                }
                const auto& p = pending_[n];
                try {
                    write(p);
                } catch (const storage::StorageError& e) {
                    if (e.busy()) {
                        throw;
                    }
                    // An account deleted a moment ago, a broken row: this entry only.
                    m_.log().debug("archive: an entry was not archived: ", e.what());
                }
            }
            tx.commit();
        } catch (const storage::StorageError& e) {
            if (e.busy()) {
                locked_ = true;
                draining_ = true;
                return false;  // the 100 ms timer tries again
            }
            m_.log().warn("archive: entries not archived: ", e.what());
            n = pending_.size();  // a database that cannot write drops them, never loops
        }
        for (std::size_t i = 0; i < n; ++i) {
            pending_bytes_ -= pending_.front().payload.size();
            pending_.pop_front();
        }
        locked_ = false;
        draining_ = !pending_.empty();
        return true;
    }

    Flow inbound(StanzaEvent& e) {
        if (!server_.is_local(e.to) || e.to.local().empty() || !archivable(e.stanza)) {
            return Flow::Continue;
        }
        const std::string owner = e.to.local();
        const std::string by = e.to.bare().str();
        // XEP-0359 §5: a stanza-id claiming to be ours was not set by us; drop it. Unless the
        // server itself routes a message again (XEP-0198 handing on what a session never
        // acknowledged): that one is archived already.
        if (e.origin == nullptr && rerouted_safely(e.stanza, owner, by)) {
            return Flow::Continue;
        }
        drop_stanza_ids(e.stanza, by);
        if (!wanted_safely(e.to.bare(), e.from)) {
            return Flow::Continue;
        }
        const auto id = random_hex(12);
        e.stanza.add(Element("stanza-id", std::string(ns_sid)).attr("id", id).attr("by", by));
        archive(owner, e.from, id, e.stanza);
        return Flow::Continue;
    }

    // A message the server routes again carries the id it got when it was archived; a forged
    // one would have to guess an id that exists in this very archive.
    bool rerouted_safely(const Element& message, const std::string& owner,
                         const std::string& by) const {
        try {
            return rerouted(message, owner, by);
        } catch (const storage::StorageError&) {
            return false;
        }
    }

    bool rerouted(const Element& message, const std::string& owner, const std::string& by) const {
        for (const auto* sid : message.children("stanza-id", ns_sid)) {
            if (sid->attr("by") == by) {
                ArchiveQuery q;
                q.ids = {std::string(sid->attr("id"))};
                q.max = 1;
                auto page = store_.query(owner, q);
                return page && !page->items.empty();
            }
        }
        return false;
    }

    Flow outbound(StanzaEvent& e) {
        if (e.origin == nullptr || !archivable(e.stanza) || e.to.local().empty()) {
            return Flow::Continue;
        }
        const std::string owner = e.from.local();
        if (!wanted_safely(e.from.bare(), e.to)) {
            return Flow::Continue;
        }
        Element copy = e.stanza;
        drop_stanza_ids(copy, {});
        archive(owner, e.to, random_hex(12), copy);
        return Flow::Continue;
    }

    void purge() {
        const auto cutoff = server_.clock().unix_seconds() -
                            std::chrono::duration_cast<std::chrono::seconds>(retention_).count();
        try {
            if (auto n = store_.remove_older_than(cutoff); n > 0) {
                m_.log().debug("archive: ", n, " expired message(s) removed");
            }
        } catch (const storage::StorageError& e) {
            m_.log().debug("archive: expiry postponed: ", e.what());  // the next run catches up
        }
    }

    // ---- preferences (XEP-0441) ----

    const Prefs& prefs(const std::string& owner) {
        auto it = prefs_.find(owner);
        if (it != prefs_.end()) {
            return it->second;
        }
        Prefs p;
        if (auto raw = server_.kv().get(owner, prefs_store, "prefs")) {
            if (auto el = xml::parse_fragment(*raw, ns_mam)) {
                p = parse_prefs(*el);
            }
        }
        return prefs_.emplace(owner, std::move(p)).first->second;
    }

    static Prefs parse_prefs(const Element& el) {
        Prefs p;
        auto d = el.attr("default");
        if (d == "never" || d == "roster") {
            p.default_mode = std::string(d);
        }
        auto read = [](const Element* list, std::unordered_set<std::string>& out) {
            if (list == nullptr) {
                return;
            }
            for (const auto* j : list->children()) {
                if (auto jid = Jid::parse(j->text()); jid && out.size() < max_pref_jids) {
                    out.insert(jid->bare().str());
                }
            }
        };
        read(el.child("always", ns_mam), p.always);
        read(el.child("never", ns_mam), p.never);
        return p;
    }

    static Element prefs_element(const Prefs& p) {
        Element el("prefs", std::string(ns_mam));
        el.attr("default", p.default_mode);
        for (auto [name, set] : {std::pair{"always", &p.always}, std::pair{"never", &p.never}}) {
            auto& list = el.add(Element(name, std::string(ns_mam)));
            std::vector<std::string> sorted(set->begin(), set->end());
            std::sort(sorted.begin(), sorted.end());
            for (const auto& j : sorted) {
                list.add(Element("jid", std::string(ns_mam))).text(j);
            }
        }
        return el;
    }

    // ---- queries ----

    Flow iq(StanzaEvent& e) {
        // Only one's own archive; anyone else's answers as if there were none.
        if (!e.origin || e.to != e.from.bare()) {
            e.reply_error("service-unavailable");
            return Flow::Stop;
        }
        const auto* payload = e.stanza.first_child();
        if (payload == nullptr) {
            e.reply_error("bad-request");
            return Flow::Stop;
        }
        const std::string owner = e.from.local();
        if (payload->name() == "prefs") {
            if (e.type() == "set") {
                Prefs p = parse_prefs(*payload);
                server_.kv().put(owner, prefs_store, "prefs", xml::serialize(prefs_element(p)));
                prefs_[owner] = p;
            }
            auto result = make_result(e.stanza);
            result.add(prefs_element(prefs(owner)));
            e.reply(std::move(result));
            return Flow::Stop;
        }
        if (payload->name() != "query") {
            e.reply_error("bad-request");
            return Flow::Stop;
        }
        if (e.type() == "get") {
            e.reply(form_fields_result(e.stanza));  // §4.1.1: the form's fields
            return Flow::Stop;
        }
        query(e, owner, *payload);
        return Flow::Stop;
    }

    Element form_fields_result(const Element& request) const {
        auto result = make_result(request);
        auto& q = result.add(Element("query", std::string(ns_mam)));
        auto x = make_typed_form("form", ns_mam);
        add_field(x, "with", "jid-single", "With");
        add_field(x, "start", "text-single", "Start");
        add_field(x, "end", "text-single", "End");
        add_field(x, "before-id", "text-single", "Before id");
        add_field(x, "after-id", "text-single", "After id");
        add_field(x, "ids", "text-multi", "Ids");
        q.add(std::move(x));
        return result;
    }

    void query(StanzaEvent& e, const std::string& owner, const Element& query) {
        const std::string queryid(query.attr("queryid"));
        if (queryid.size() > max_queryid_bytes) {
            e.reply_error("bad-request", "queryid too long");
            return;
        }
        ArchiveQuery q;
        q.max = std::min<std::size_t>(50, max_page_);
        if (const auto* x = query.child("x", ns::data_forms)) {
            if (auto with = form_value(*x, "with"); !with.empty()) {
                auto jid = Jid::parse(with);
                if (!jid) {
                    e.reply_error("jid-malformed");
                    return;
                }
                q.with_full = !jid->resource().empty();
                q.with = q.with_full ? jid->str() : jid->bare().str();
            }
            for (auto [field, out] : {std::pair{"start", &q.start}, std::pair{"end", &q.end}}) {
                if (auto v = form_value(*x, field); !v.empty()) {
                    auto t = parse_xep82_datetime(v);
                    if (!t) {
                        e.reply_error("bad-request", std::string("bad date in ") + field);
                        return;
                    }
                    *out = *t;
                }
            }
            if (auto v = form_value(*x, "after-id"); !v.empty()) {
                q.after_id = v;
            }
            if (auto v = form_value(*x, "before-id"); !v.empty()) {
                q.before_id = v;
            }
            q.ids = form_values(*x, "ids");
            if (q.ids.size() > max_ids) {
                e.reply_error("policy-violation", "too many ids");
                return;
            }
        }
        if (const auto* set = query.child("set", ns_rsm)) {
            if (const auto* max = set->child("max", ns_rsm)) {
                auto text = max->text();
                std::size_t n = 0;
                auto r = std::from_chars(text.data(), text.data() + text.size(), n);
                if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
                    e.reply_error("bad-request", "bad <max/>");
                    return;
                }
                q.max = std::min(n, max_page_);
            }
            if (const auto* after = set->child("after", ns_rsm)) {
                q.rsm_after = after->text();
            }
            if (const auto* before = set->child("before", ns_rsm)) {
                q.rsm_before = before->text();
            }
        }
        flush_pending(true);  // what arrived this very turn is in the archive too
        auto page = store_.query(owner, q);
        if (!page) {
            e.reply_error("item-not-found");  // §4.1.1: an id that is not in the archive
            return;
        }
        const auto archive = e.to.bare().str();
        for (const auto& item : page->items) {
            auto original = xml::parse_fragment(item.payload);
            if (!original) {
                continue;
            }
            Element msg("message", std::string(ns::client));
            msg.attr("from", archive).attr("to", e.from.str()).attr("id", random_hex(8));
            auto& result = msg.add(Element("result", std::string(ns_mam)));
            if (!queryid.empty()) {
                result.attr("queryid", queryid);
            }
            result.attr("id", item.id);
            auto& fwd = result.add(Element("forwarded", std::string(ns_forward)));
            fwd.add(Element("delay", std::string(ns::delay)))
                .attr("stamp", xep82_datetime(item.stamp));
            fwd.add(std::move(*original));
            e.origin->send(msg);
        }
        auto result = make_result(e.stanza);
        auto& fin = result.add(Element("fin", std::string(ns_mam)));
        if (page->complete) {
            fin.attr("complete", "true");
        }
        auto& set = fin.add(Element("set", std::string(ns_rsm)));
        if (!page->items.empty()) {
            set.add(Element("first", std::string(ns_rsm))).text(page->items.front().id);
            set.add(Element("last", std::string(ns_rsm))).text(page->items.back().id);
        }
        e.reply(std::move(result));
    }

    ModuleContext& m_;
    Server& server_;
    ArchiveStore store_;
    std::chrono::days retention_;
    std::size_t max_page_;
    std::vector<std::pair<std::uint64_t, Veto>> vetoes_;
    std::uint64_t next_veto_ = 0;
    // Loaded on first use; bounded by the accounts that got or sent messages.
    std::unordered_map<std::string, Prefs> prefs_;
    static constexpr std::size_t max_pending = 10000;
    static constexpr std::size_t max_pending_bytes = 4 * 1024 * 1024;
    std::deque<Pending> pending_;
    std::size_t pending_bytes_ = 0;
    bool dropped_warned_ = false;
    bool flush_posted_ = false;
    bool locked_ = false;    // the last write met another process's lock
    bool draining_ = false;  // writing the backlog such a lock left
    // Posted flushes hold a weak reference: they do nothing once the module is gone.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

std::unique_ptr<Mam> load(ModuleContext& m) {
    return std::make_unique<Mam>(m);
}

}  // namespace
}  // namespace haven::xeps::mam

HAVEN_MODULE(archive, haven::xeps::mam::load)
