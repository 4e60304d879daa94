// Functional addresses: shared team inboxes (beratung@domain) with one pseudonymous JID per
// inquiry for the staff, first-reply claims, handover and close (README.md).
#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

#include "modules/functional_addresses/address_config.hpp"
#include "modules/functional_addresses/inquiry_store.hpp"
#include "modules/functional_addresses/stanzas.hpp"
#include "modules/functional_addresses/texts.hpp"
#include "modules/peersupport/peersupport.hpp"
#include "modules/peersupport/policy.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/user_store.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0050_commands.hpp"

namespace haven::functional_addresses {
namespace {

constexpr std::string_view handover_node = "urn:haven:functional-addresses:handover";
constexpr std::string_view close_node = "urn:haven:functional-addresses:close";

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool has_to(const storage::RosterItem& i) {
    return i.subscription == "to" || i.subscription == "both";
}

// What the result of a handover or close was, for the chat command and the ad-hoc command.
struct Outcome {
    bool ok = false;
    std::string text;
};

class Module {
public:
    explicit Module(ModuleContext& m) : m_(m), server_(m.server()), store_(server_.db()) {
        if (const auto* node = server_.config().get_node("functional_addresses", "addresses")) {
            addresses_ = parse_addresses(*node);
        }
        for (std::size_t i = 0; i < addresses_.size(); ++i) {
            const auto& a = addresses_[i];
            if (a.domain != server_.domain()) {
                throw config::ConfigError("[functional_addresses] addresses: '" + a.jid() +
                                          "' is not an address of this server (" +
                                          server_.domain() + ")");
            }
            by_local_.emplace(a.local, i);
        }
        register_texts(server_.texts(), addresses_);
        for (std::string kind : {"message", "presence", "iq"}) {
            for (std::string target : {"bare", "full"}) {
                auto handler = [this](StanzaEvent& e) { return route(e); };
                // Before the peer-support policy (and blocking): the address is no account.
                m.hook("pre-" + kind + "/" + target, handler, prio::policy + 100);
                // Stanzas routed by modules (presence broadcasts, bounces) arrive here.
                m.hook(kind + "/" + target, handler, prio::policy + 100);
            }
        }
        auto& s = server_;
        auto online = s.initial_presence.connect([this](Session& session) { online_(session); });
        m.own_connection([&s, online] { s.initial_presence.disconnect(online); });
        auto deleted = s.user_deleted.connect([this](const std::string& l) { user_deleted(l); });
        m.own_connection([&s, deleted] { s.user_deleted.disconnect(deleted); });
        if (auto days = m.opt_int("closed_retention_days"); days > 0) {
            m.every(std::chrono::hours(1),
                    [this, days] { store_.purge_closed(unix_now() - days * 86400); });
        }
        register_commands();
        m.log().info("functional_addresses: ", addresses_.size(), " address(es)");
    }

    ~Module() {
        if (auto* commands = server_.service<xeps::CommandRegistry>()) {
            commands->remove(handover_node);
            commands->remove(close_node);
        }
    }

    // Runs once the server is up, when every module (peersupport: roles) has loaded.
    void check_staff() {
        auto* ps = server_.service<peersupport::PeerSupport>();
        for (const auto& a : addresses_) {
            if (server_.user_exists(a.local)) {
                m_.log().warn("functional_addresses: an account with the localpart of ", a.jid(),
                              " exists; the functional address shadows it");
            }
            for (const auto& staff : a.staff) {
                auto local = Jid::parse(staff)->local();
                if (!server_.user_exists(local)) {
                    m_.log().warn("functional_addresses: staff of ", a.jid(),
                                  " lists an account that does not exist");
                } else if (ps && !peersupport::is_staff(ps->role_of(local))) {
                    m_.log().warn("functional_addresses: staff of ", a.jid(),
                                  " lists an account that is neither supporter nor admin");
                }
            }
        }
    }

private:
    // ---- addressing ----

    struct Target {
        const AddressConfig* address = nullptr;
        std::string token;  // empty: the functional address itself
    };

    Target resolve(const std::string& local) const {
        if (auto it = by_local_.find(local); it != by_local_.end()) {
            return {&addresses_[it->second], {}};
        }
        auto plus = local.find('+');
        if (plus == std::string::npos) {
            return {};
        }
        auto it = by_local_.find(local.substr(0, plus));
        auto token = local.substr(plus + 1);
        if (it == by_local_.end() || !is_token(token)) {
            return {};
        }
        return {&addresses_[it->second], token};
    }

    std::string pseudo_jid(const AddressConfig& a, const std::string& token) const {
        return a.local + "+" + token + "@" + a.domain;
    }

    bool is_staff_of(const AddressConfig& a, const Jid& who) const {
        if (!server_.is_local(who) || who.local().empty()) {
            return false;
        }
        auto bare = who.bare().str();
        return std::find(a.staff.begin(), a.staff.end(), bare) != a.staff.end();
    }

    bool is_admin(const std::string& staff_bare) const {
        auto* ps = server_.service<peersupport::PeerSupport>();
        auto jid = Jid::parse(staff_bare);
        return ps && jid && ps->role_of(jid->local()) == peersupport::Role::Admin;
    }

    Flow route(StanzaEvent& e) {
        if (e.to.local().empty() || !server_.is_local(e.to)) {
            return Flow::Continue;
        }
        auto target = resolve(e.to.local());
        if (!target.address) {
            return Flow::Continue;
        }
        const auto& a = *target.address;
        if (target.token.empty()) {
            to_address(e, a);
            return Flow::Stop;
        }
        // A pseudonymous JID exists only for the staff of its address: everyone else gets
        // exactly what a non-existent account answers (the normal routing does that).
        auto inquiry = store_.find(target.token);
        if (!inquiry || inquiry->address != a.local || !is_staff_of(a, e.from)) {
            return Flow::Continue;
        }
        to_inquiry(e, a, *inquiry);
        return Flow::Stop;
    }

    // ---- stanzas to the functional address (from anyone) ----

    void to_address(StanzaEvent& e, const AddressConfig& a) {
        switch (e.kind) {
            case StanzaKind::Message:
                address_message(e, a);
                break;
            case StanzaKind::Presence:
                presence_to(e, a.jid(), a.name);
                break;
            case StanzaKind::Iq:
                answer_iq(e, a.name);
                break;
            case StanzaKind::Other:
                break;
        }
    }

    void address_message(StanzaEvent& e, const AddressConfig& a) {
        auto type = e.type();
        if (type == "error" || type == "headline") {
            return;  // nothing to answer, nobody to show it to
        }
        if (type == "groupchat") {
            e.reply_error("service-unavailable");  // as an account does (RFC 6121 §8.5.2.1.1)
            return;
        }
        if (resolve(e.from.local()).address && server_.is_local(e.from)) {
            return;  // from a functional address itself: never loop
        }
        const auto sender = e.from.bare().str();
        auto inquiry = store_.active(a.local, sender);
        if (!peersupport::has_content(e.stanza)) {
            // Typing notifications and the like reach the claimer only, and only once claimed.
            if (inquiry && inquiry->state == State::Claimed) {
                forward_chat_state(e.stanza, pseudo_jid(a, inquiry->token), inquiry->claimed_by);
            }
            return;
        }
        const auto now = unix_now();
        bool fresh = !inquiry;
        if (fresh) {
            inquiry = store_.create(a.local, sender, now, [this, &a](std::string_view token) {
                return server_.user_exists(a.local + "+" + std::string(token));
            });
            m_.log().info("functional_addresses: new inquiry at ", a.jid());
            auto_reply(e, a, sender);
        } else {
            store_.touch(inquiry->token, now);
        }
        const auto from = pseudo_jid(a, inquiry->token);
        if (inquiry->state == State::Claimed) {
            deliver_to_staff(to_staff(e.stanza, a, *inquiry, inquiry->claimed_by));
            return;
        }
        for (const auto& staff : a.staff) {
            if (staff == sender) {
                continue;
            }
            if (fresh) {
                auto lang = staff_lang(staff);
                auto intro = chat_message(from, staff);
                intro.attr("xml:lang", lang);
                intro.add(nick(sender_label(a, *inquiry, lang)));
                intro.add(Element("body", std::string(ns::client)))
                    .text(fill(
                        text(a.show_sender == ShowSender::Jid ? "fa-intro-jid"
                                                              : "fa-intro-pseudonym",
                             lang),
                        {{"{address}", a.name}, {"{sender}", sender_label(a, *inquiry, lang)}}));
                deliver_to_staff(std::move(intro));
            }
            deliver_to_staff(to_staff(e.stanza, a, *inquiry, staff));
        }
    }

    // Inquiries must not be lost while no supporter is online (issue #5): a staff member who
    // is offline gets the message queued in offline storage under this module's own limit
    // ([functional_addresses] staff_queue_limit), not the per-user [offline] quota meant for
    // personal chats, and is handed it with a delay stamp at the next login.
    void deliver_to_staff(Element message) {
        auto to = Jid::parse(message.attr("to"));
        if (!to) {
            return;
        }
        if (!server_.sessions().message_targets(to->local()).empty()) {
            server_.router().route(std::move(message));
            return;
        }
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        auto limit = static_cast<std::size_t>(m_.opt_int("staff_queue_limit"));
        if (!server_.offline().push(to->local(), now, xml::serialize(message), limit)) {
            m_.log().warn("functional_addresses: a staff member's queue is full; an inquiry "
                          "message could not be queued");
        }
    }

    void auto_reply(StanzaEvent& e, const AddressConfig& a, const std::string& sender) {
        if (a.auto_reply_en.empty() && a.auto_reply_de.empty()) {
            return;
        }
        auto key = "fa-auto-reply/" + a.local;
        auto lang = e.lang();
        auto reply = chat_message(a.jid(), sender);
        reply.attr("xml:lang", server_.texts().pick_lang(key, lang));
        reply.add(Element("body", std::string(ns::client))).text(server_.texts().get(key, lang));
        server_.router().route(std::move(reply));
    }

    // A copy of the sender's message for one staff member, from the inquiry's JID.
    Element to_staff(const Element& original, const AddressConfig& a, const Inquiry& i,
                     const std::string& staff) {
        auto out = chat_message(pseudo_jid(a, i.token), staff);
        copy_payload(original, out, {});
        out.add(nick(sender_label(a, i, staff_lang(staff))));
        return out;
    }

    void forward_chat_state(const Element& original, const std::string& from,
                            const std::string& to) {
        for (const auto* child : original.children()) {
            if (is_chat_state(*child)) {
                auto out = chat_message(from, to);
                out.add(*child);
                server_.router().route(std::move(out));
                return;
            }
        }
    }

    // How the staff see the sender: the bare JID, or "Inquiry 7f3k" (show_sender).
    std::string sender_label(const AddressConfig& a, const Inquiry& i,
                             std::string_view lang) const {
        if (a.show_sender == ShowSender::Jid) {
            return i.sender;
        }
        return fill(text("fa-inquiry-label", lang), {{"{token}", i.token}});
    }

    // ---- stanzas to an inquiry's JID (from its address's staff) ----

    void to_inquiry(StanzaEvent& e, const AddressConfig& a, Inquiry& i) {
        switch (e.kind) {
            case StanzaKind::Message:
                inquiry_message(e, a, i);
                break;
            case StanzaKind::Presence:
                presence_to(e, pseudo_jid(a, i.token), inquiry_title(a, i, e.lang()));
                break;
            case StanzaKind::Iq:
                answer_iq(e, inquiry_title(a, i, e.lang()));
                break;
            case StanzaKind::Other:
                break;
        }
    }

    std::string inquiry_title(const AddressConfig& a, const Inquiry& i,
                              std::string_view lang) const {
        return a.name + ": " + sender_label(a, i, lang);
    }

    void inquiry_message(StanzaEvent& e, const AddressConfig& a, Inquiry& i) {
        auto type = e.type();
        if (type == "error" || type == "headline" || type == "groupchat") {
            return;  // bounces of our own copies, or nothing the sender should see
        }
        const auto staff = e.from.bare().str();
        auto body = trim(e.stanza.child_text("body", ns::client));
        // Clients such as profanity and Gajim run "/close" themselves and never send it, so
        // the commands also work with "!" ("!close"); an unknown "!word" is just a message.
        if (body.starts_with('!')) {
            auto word = body.substr(1, body.find_first_of(" \t\r\n") - 1);
            if (word == "help" || word == "close" || word == "handover") {
                body[0] = '/';
            }
        }
        if (body.starts_with('/') && !body.starts_with("/me ")) {
            text_command(e, a, i, staff, body);
            return;
        }
        if (!peersupport::has_content(e.stanza)) {
            if (i.state == State::Claimed && i.claimed_by == staff) {
                forward_chat_state(e.stanza, a.jid(), i.sender);
            }
            return;
        }
        const auto now = unix_now();
        const auto lang = e.lang();
        if (i.state == State::Open) {
            // The core executor handles one stanza at a time and the UPDATE only matches an
            // open inquiry: of two simultaneous replies exactly one claims it.
            if (store_.claim(i.token, staff, now)) {
                i.state = State::Claimed;
                i.claimed_by = staff;
                m_.log().info("functional_addresses: inquiry at ", a.jid(), " claimed");
                for (const auto& other : a.staff) {
                    if (other != staff) {
                        notify(a, i, other, "fa-taken", {{"{staff}", staff_label(staff)}});
                    }
                }
            } else if (auto again = store_.find(i.token)) {
                i = *again;
            }
        }
        if (i.state == State::Closed) {
            e.reply_error("gone", text("fa-closed", lang), pick(lang));
            return;
        }
        if (i.state == State::Claimed && i.claimed_by != staff) {
            e.reply_error(
                "not-allowed",
                fill(text("fa-already-taken", lang), {{"{staff}", staff_label(i.claimed_by)}}),
                pick(lang));
            return;
        }
        store_.touch(i.token, now);
        server_.router().route(to_sender(e.stanza, a, i, staff));
    }

    // A supporter's reply as the sender gets it: from the functional address, never with a
    // supporter's JID (README.md §8).
    Element to_sender(const Element& original, const AddressConfig& a, const Inquiry& i,
                      const std::string& staff) {
        auto out = chat_message(a.jid(), i.sender);
        copy_payload(original, out, a.staff);
        if (a.reply_nick) {
            out.add(nick(display_name(staff)));
        }
        return out;
    }

    void text_command(StanzaEvent& e, const AddressConfig& a, const Inquiry& i,
                      const std::string& staff, const std::string& body) {
        auto lang = e.lang();
        auto space = body.find_first_of(" \t\r\n");
        auto command = body.substr(0, space);
        auto argument = space == std::string::npos ? std::string{} : trim(body.substr(space));
        std::string answer;
        if (command == "/help") {
            answer = fill(text("fa-help", lang), {{"{address}", a.name}});
        } else if (command == "/close") {
            answer = close_inquiry(a, i, staff, lang).text;
        } else if (command == "/handover") {
            answer = argument.empty() ? text("fa-handover-usage", lang)
                                      : hand_over(a, i, staff, argument, lang).text;
        } else {
            answer = fill(text("fa-unknown-command", lang), {{"{command}", command}});
        }
        auto reply = chat_message(pseudo_jid(a, i.token), e.from.str());
        reply.attr("xml:lang", pick(lang));
        reply.add(Element("body", std::string(ns::client))).text(answer);
        server_.router().route(std::move(reply));
    }

    // ---- handover and close (chat commands and ad-hoc commands) ----

    // Whoever holds the inquiry may pass it on or close it; an unclaimed one any of its staff;
    // admins any.
    bool may_manage(const Inquiry& i, const std::string& staff) const {
        return i.state == State::Open || i.claimed_by == staff || is_admin(staff);
    }

    Outcome refuse_managing(const Inquiry& i, std::string_view lang) const {
        if (i.state == State::Closed) {
            return {false, text("fa-closed", lang)};
        }
        return {false,
                fill(text("fa-already-taken", lang), {{"{staff}", staff_label(i.claimed_by)}})};
    }

    Outcome close_inquiry(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                          std::string_view lang) {
        if (i.state == State::Closed || !may_manage(i, staff)) {
            return refuse_managing(i, lang);
        }
        if (!store_.close(i.token, unix_now())) {
            return {false, text("fa-closed", lang)};
        }
        m_.log().info("functional_addresses: inquiry at ", a.jid(), " closed");
        for (const auto& other : a.staff) {
            bool told =
                i.state == State::Open ? other != staff : (other == i.claimed_by && other != staff);
            if (told) {
                notify(a, i, other, "fa-closed-by", {{"{staff}", staff_label(staff)}});
            }
        }
        return {true, text("fa-close-done", lang)};
    }

    Outcome hand_over(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                      const std::string& who, std::string_view lang) {
        if (i.state == State::Closed || !may_manage(i, staff)) {
            return refuse_managing(i, lang);
        }
        auto target =
            who.find('@') == std::string::npos ? Jid::make(who, server_.domain()) : Jid::parse(who);
        if (!target || !is_staff_of(a, *target)) {
            return {false, fill(text("fa-handover-not-staff", lang),
                                {{"{who}", who}, {"{address}", a.name}})};
        }
        auto to = target->bare().str();
        if (i.state == State::Claimed && i.claimed_by == to) {
            return {false, fill(text("fa-handover-same", lang), {{"{staff}", staff_label(to)}})};
        }
        auto from = i.state == State::Claimed ? i.claimed_by : std::string{};
        if (!store_.reassign(i.token, from, to, unix_now())) {
            return {false, text("fa-closed", lang)};
        }
        m_.log().info("functional_addresses: inquiry at ", a.jid(), " handed over");
        if (to != staff) {
            notify(a, i, to, "fa-handed-to-you", {{"{staff}", staff_label(staff)}});
        }
        for (const auto& other : a.staff) {
            if (other == staff || other == to) {
                continue;
            }
            if (other == i.claimed_by) {
                // An admin moved someone else's inquiry: its holder learns it.
                notify(a, i, other, "fa-handed-over",
                       {{"{from}", staff_label(staff)}, {"{to}", staff_label(to)}});
            } else if (i.state == State::Open) {
                notify(a, i, other, "fa-taken", {{"{staff}", staff_label(to)}});
            }
        }
        return {true, fill(text("fa-handover-done", lang), {{"{staff}", staff_label(to)}})};
    }

    // A notice in the inquiry's chat of one staff member, in their language.
    void notify(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                std::string_view key,
                std::initializer_list<std::pair<std::string_view, std::string_view>> vars) {
        auto lang = staff_lang(staff);
        auto out = chat_message(pseudo_jid(a, i.token), staff);
        out.attr("xml:lang", lang);
        out.add(Element("body", std::string(ns::client))).text(fill(text(key, lang), vars));
        deliver_to_staff(std::move(out));
    }

    // ---- presence and IQs to the address or an inquiry ----

    // Subscriptions are approved at once (the address is public to whoever may write to it),
    // probes answered with available presence, everything else swallowed.
    void presence_to(StanzaEvent& e, const std::string& contact, const std::string& name) {
        auto type = e.type();
        const auto requester = e.from.bare();
        auto& router = server_.router();
        if (type == "subscribe") {
            bool known = false;
            if (server_.is_local(requester) && server_.user_exists(requester.local())) {
                // The presence module's outbound half did not run (the stanza stops here):
                // note the pending request so its inbound half accepts the 'subscribed'
                // below and pushes the item (RFC 6121 §3.1.2, §3.1.6).
                auto item = server_.roster().get(requester.local(), contact);
                if (!item) {
                    item = storage::RosterItem{};
                    item->contact = contact;
                    item->name = name;
                }
                known = has_to(*item);
                if (!known) {
                    item->ask_out = true;
                    server_.roster().put(requester.local(), *item);
                }
            }
            if (!known) {
                router.route(presence("subscribed", contact, requester.str()));
            }
            router.route(presence({}, contact, requester.str()));
        } else if (type == "unsubscribe") {
            router.route(presence("unsubscribed", contact, requester.str()));
            router.route(presence("unavailable", contact, requester.str()));
        } else if (type == "probe") {
            router.route(presence({}, contact, e.from.str()));
        }
    }

    void answer_iq(StanzaEvent& e, const std::string& name) {
        auto type = e.type();
        if (type != "get" && type != "set") {
            return;  // results and errors are never answered (RFC 6120 §8.3.1)
        }
        const auto* payload = e.stanza.first_child();
        if (type == "get" && payload) {
            const auto& ns = payload->ns();
            if (ns == ns::disco_info && payload->name() == "query") {
                if (!payload->attr("node").empty()) {
                    e.reply_error("item-not-found");
                    return;
                }
                auto result = make_result(e.stanza);
                auto& q = result.add(Element("query", std::string(ns::disco_info)));
                // XEP-0030: a client identity, so clients show the name like a person's.
                q.add(Element("identity", std::string(ns::disco_info)))
                    .attr("category", "client")
                    .attr("type", "pc")
                    .attr("name", name);
                for (auto f : {ns::disco_info, ns::nick, ns::ping, ns::vcard}) {
                    q.add(Element("feature", std::string(ns::disco_info)))
                        .attr("var", std::string(f));
                }
                e.reply(std::move(result));
                return;
            }
            if (ns == ns::disco_items && payload->name() == "query") {
                auto result = make_result(e.stanza);
                result.add(Element("query", std::string(ns::disco_items)));
                e.reply(std::move(result));
                return;
            }
            if (ns == ns::vcard && payload->name() == "vCard") {
                auto result = make_result(e.stanza);
                auto& card = result.add(Element("vCard", std::string(ns::vcard)));
                card.add(Element("FN", std::string(ns::vcard))).text(name);
                card.add(Element("NICKNAME", std::string(ns::vcard))).text(name);
                e.reply(std::move(result));
                return;
            }
            if (ns == ns::ping && payload->name() == "ping") {
                e.reply(make_result(e.stanza));
                return;
            }
        }
        e.reply_error("service-unavailable");
    }

    // ---- lifecycle ----

    // The presence module answers probes of local contacts itself and knows nothing of
    // functional addresses: subscribers get their available presence here.
    void online_(Session& session) {
        const auto& local = session.jid().local();
        for (const auto& item : server_.roster().get_all(local)) {
            if (!has_to(item)) {
                continue;
            }
            auto contact = Jid::parse(item.contact);
            if (!contact || !server_.is_local(*contact) || contact->local().empty()) {
                continue;
            }
            auto target = resolve(contact->local());
            if (!target.address) {
                continue;
            }
            if (!target.token.empty()) {
                auto i = store_.find(target.token);
                if (!i || i->state == State::Closed ||
                    !is_staff_of(*target.address, session.jid())) {
                    continue;
                }
            }
            session.send(presence({}, contact->str(), session.jid().str()));
        }
    }

    void user_deleted(const std::string& local) {
        auto jid = Jid::make(local, server_.domain());
        if (!jid) {
            return;
        }
        store_.remove_sender(jid->str());
        store_.release_claims(jid->str(), unix_now());
    }

    // ---- ad-hoc commands (XEP-0050) ----

    void register_commands() {
        auto* commands = server_.service<xeps::CommandRegistry>();
        if (!commands) {
            m_.log().warn("functional_addresses: ad-hoc commands module not loaded");
            return;
        }
        auto allowed = [this](const Jid& who) {
            return std::any_of(addresses_.begin(), addresses_.end(),
                               [&](const AddressConfig& a) { return is_staff_of(a, who); });
        };
        xeps::AdHocCommand handover;
        handover.node = std::string(handover_node);
        handover.name = "Hand over an inquiry";
        handover.allowed = allowed;
        handover.run = [this](const Jid& who, const Element* form, std::string_view lang) {
            return run_command(who, form, lang, true);
        };
        commands->add(std::move(handover));
        xeps::AdHocCommand close;
        close.node = std::string(close_node);
        close.name = "Close an inquiry";
        close.allowed = allowed;
        close.run = [this](const Jid& who, const Element* form, std::string_view lang) {
            return run_command(who, form, lang, false);
        };
        commands->add(std::move(close));
    }

    xeps::CommandStep run_command(const Jid& who, const Element* form, std::string_view lang,
                                  bool handover) {
        const auto staff = who.bare().str();
        xeps::CommandStep step;
        if (form) {
            auto jid = Jid::parse(xeps::form_value(*form, "inquiry"));
            std::optional<Inquiry> i;
            Target target;
            if (jid && server_.is_local(*jid) && !jid->local().empty()) {
                target = resolve(jid->local());
                if (target.address && !target.token.empty() && is_staff_of(*target.address, who)) {
                    i = store_.find(target.token);
                }
            }
            if (!i || i->address != target.address->local) {
                step.error = true;
                step.note = text("fa-cmd-unknown", lang);
                return step;
            }
            auto outcome = handover ? hand_over(*target.address, *i, staff,
                                                trim(xeps::form_value(*form, "to")), lang)
                                    : close_inquiry(*target.address, *i, staff, lang);
            step.error = !outcome.ok;
            step.note = outcome.text;
            return step;
        }
        auto x = xeps::make_form(
            text(handover ? "fa-cmd-handover-title" : "fa-cmd-close-title", lang),
            text(handover ? "fa-cmd-handover-instructions" : "fa-cmd-close-instructions", lang));
        auto& field =
            xeps::add_field(x, "inquiry", "list-single", text("fa-cmd-field-inquiry", lang));
        std::vector<std::string> team;
        bool any = false;
        for (const auto& i : store_.list_active()) {
            auto t = resolve(i.address);
            if (!t.address || !is_staff_of(*t.address, who) || !may_manage(i, staff)) {
                continue;
            }
            any = true;
            auto state =
                i.state == State::Open ? text("fa-state-open", lang) : staff_label(i.claimed_by);
            xeps::add_option(field, inquiry_title(*t.address, i, lang) + " (" + state + ")",
                             pseudo_jid(*t.address, i.token));
            for (const auto& s : t.address->staff) {
                if (std::find(team.begin(), team.end(), s) == team.end()) {
                    team.push_back(s);
                }
            }
        }
        if (!any) {
            step.note = text("fa-cmd-none", lang);
            return step;
        }
        if (handover) {
            auto& to = xeps::add_field(x, "to", "list-single", text("fa-cmd-field-to", lang));
            for (const auto& s : team) {
                xeps::add_option(to, staff_label(s), s);
            }
        }
        step.form = std::move(x);
        return step;
    }

    // ---- names and texts ----

    // A supporter as the sender may see them: vCard nickname, else full name, else the
    // account name. Never the JID (README.md §8).
    std::string display_name(const std::string& staff_bare) const {
        auto jid = Jid::parse(staff_bare);
        if (!jid) {
            return {};
        }
        try {
            if (auto stored = server_.kv().get(jid->local(), "vcard", "vcard")) {
                if (auto card = parse_stored(*stored)) {
                    for (auto tag : {"NICKNAME", "FN"}) {
                        auto value = trim(card->child_text(tag));
                        if (!value.empty()) {
                            return value;
                        }
                    }
                }
            }
        } catch (const std::exception&) {
            // An unreadable vCard (wrong key file) falls back to the account name.
        }
        return jid->local();
    }

    // A supporter as other staff see them: "Sam (sam@example.org)".
    std::string staff_label(const std::string& staff_bare) const {
        return display_name(staff_bare) + " (" + staff_bare + ")";
    }

    // The language of a staff member's notices: their client's stream language, if online.
    std::string staff_lang(const std::string& staff_bare) const {
        if (auto jid = Jid::parse(staff_bare)) {
            for (const auto& s : server_.sessions().of(jid->local())) {
                if (!s->lang().empty()) {
                    return server_.texts().pick_lang("fa-taken", s->lang());
                }
            }
        }
        return server_.texts().pick_lang("fa-taken", m_.opt_string("staff_language"));
    }

    const std::string& text(std::string_view key, std::string_view lang) const {
        return server_.texts().get(key, lang);
    }
    std::string pick(std::string_view lang) const {
        return server_.texts().pick_lang("fa-taken", lang);
    }

    ModuleContext& m_;
    Server& server_;
    InquiryStore store_;
    std::vector<AddressConfig> addresses_;
    std::unordered_map<std::string, std::size_t> by_local_;
};

std::shared_ptr<Module> load(ModuleContext& m) {
    auto module = std::make_shared<Module>(m);
    // Roles are applied by the peersupport module, which loads after this one.
    boost::asio::post(m.server().io(), [weak = std::weak_ptr<Module>(module)] {
        if (auto mod = weak.lock()) {
            mod->check_staff();
        }
    });
    return module;
}

}  // namespace

config::OptionSpec addresses_option() {
    config::OptionSpec spec;
    spec.section = "functional_addresses";
    spec.key = "addresses";
    spec.type = config::Type::Table;
    spec.doc =
        "The functional addresses: [[functional_addresses.addresses]] tables with jid, "
        "name, staff, auto_reply_en, auto_reply_de, show_sender, reply_nick.";
    spec.validate = validate_addresses;
    return spec;
}

}  // namespace haven::functional_addresses

HAVEN_MODULE(functional_addresses,
             "Functional addresses: shared team inboxes with per-inquiry JIDs",
             haven::functional_addresses::load,
             haven::config::opt_bool("functional_addresses", "enabled", true,
                                     "Serve the configured functional addresses."),
             haven::functional_addresses::addresses_option(),
             haven::config::opt_string("functional_addresses", "staff_language", "en",
                                       "Language of notices to staff who are offline.",
                                       {"en", "de"}),
             haven::config::opt_int("functional_addresses", "closed_retention_days", 30, 0, 3650,
                                    "Closed inquiries are forgotten after this many days; 0 "
                                    "keeps them."),
             haven::config::opt_int("functional_addresses", "staff_queue_limit", 10000, 1,
                                    1000000,
                                    "Inquiry messages queued per offline staff member (the "
                                    "personal [offline] quota does not apply to them)."))
