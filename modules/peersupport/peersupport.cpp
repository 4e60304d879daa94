// Peer-support model: roles, conversation grants and the restricted chat policy (README.md).
#include "modules/peersupport/peersupport.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "modules/peersupport/answers.hpp"
#include "modules/peersupport/grant_store.hpp"
#include "modules/peersupport/rooms.hpp"
#include "server/core/string_map.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/user_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/rfc6121_roster.hpp"
#include "xeps/xep0050_commands.hpp"
#include "xeps/xep0077_register.hpp"
#include "xeps/xep0191_blocking.hpp"
#include "xeps/xep0313_mam/mam.hpp"

namespace haven::peersupport {
namespace {

constexpr std::string_view end_node = "urn:haven:peersupport:end-conversation";

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// (supporter, member) pairs, looked up by string_view without building strings per message.
using GrantKey = std::pair<std::string_view, std::string_view>;
struct GrantLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return GrantKey(a.first, a.second) < GrantKey(b.first, b.second);
    }
};
using GrantSet = std::set<std::pair<std::string, std::string>, GrantLess>;

class Module final : public PeerSupport {
public:
    explicit Module(ModuleContext& m)
        : m_(m),
          server_(m.server()),
          grants_(server_.db(), server_.secret_box()),
          group_(m.opt_string("roster_group")) {
        register_texts();
        apply_config_roles(server_.config());
        load_staff();
        remove_orphaned_grants();
        snapshot_ = grant_set();
        data_version_ = server_.db().data_version();

        // Outbound checks for every stanza a local client sends to another JID.
        for (auto kind : {"message", "presence", "iq"}) {
            for (auto target : {"bare", "full", "host", "remote"}) {
                m.hook(std::string("pre-") + kind + "/" + target,
                       [this](StanzaEvent& e) { return check(e); }, prio::policy);
            }
        }
        // havenctl normally asks this server over the control socket (below: effects at once);
        // changes made to the database by other means (havenctl while the server was starting,
        // a restored backup, the sqlite3 CLI) show up here within two seconds.
        m.every(std::chrono::seconds(2), [this] { sync_external_changes(); });
        auto roles = server_.role_changed.connect([this](const std::string& local) {
            admin_set_role(local);
            load_staff();
        });
        m.own_connection([&s = server_, roles] { s.role_changed.disconnect(roles); });
        auto deleted = server_.user_deleted.connect(
            [this](const std::string& local) { user_deleted(local); });
        m.own_connection([&s = server_, deleted] { s.user_deleted.disconnect(deleted); });
        m.admin_command("grant end", 2, [this](const AdminRequest& r, const AdminDone& done) {
            admin_end_grant(r, done);
        });
        m.every(std::chrono::minutes(1), [this] { flush_touches(); });
        if (auto days = m.opt_int("grant_expiry_days"); days > 0) {
            m.every(std::chrono::seconds(m.opt_int("expiry_check_s")),
                    [this, days] { expire(days); });
        }
        register_command();
        // "The config wins and is re-applied on reload" (issue #4): on SIGHUP.
        auto reload = server_.reloaded.connect([this](const config::Config& fresh) {
            apply_config_roles(fresh);
            load_staff();
        });
        m.own_connection([&s = server_, reload] { s.reloaded.disconnect(reload); });
        // The names of configured staff are reserved even before their accounts exist, so
        // nobody can register "sam" before the admin creates sam's account (issue 11).
        if (auto* names = server_.service<xeps::NameReservations>()) {
            auto handle = names->add(
                [this](std::string_view local) { return configured_staff_.contains(local); });
            m.own_connection([&s = server_, handle] {
                if (auto* n = s.service<xeps::NameReservations>()) {
                    n->remove(handle);
                }
            });
        }
        if (auto* archive = server_.service<xeps::mam::Archive>();
            archive && !m.opt_bool("archive_member_conversations")) {
            // A member's "deliver, then delete" must not be undone by the other side's
            // archive: no conversation with a member (or with a functional address, whose
            // inquiry JIDs stand for members; unknown names are members to role_of) is kept.
            auto handle = archive->add_veto([this](const Jid& owner, const Jid& with) {
                return role_of(owner.local()) == Role::Member ||
                       (server_.is_local(with) && role_of(with.local()) == Role::Member);
            });
            m.own_connection([&s = server_, handle] {
                if (auto* a = s.service<xeps::mam::Archive>()) {
                    a->remove_veto(handle);
                }
            });
        }
        server_.provide<PeerSupport>(this);
        rooms_ = std::make_unique<RoomRules>(m, *this);
    }

    ~Module() override {
        rooms_.reset();
        try {
            flush_touches();
        } catch (const std::exception& e) {
            m_.log().warn("peersupport: grant activity not saved: ", e.what());
        }
        server_.withdraw<PeerSupport>();
        if (auto* commands = server_.service<xeps::CommandRegistry>()) {
            commands->remove(end_node);
        }
    }

    Role role_of(std::string_view localpart) const override {
        auto it = staff_.find(std::string(localpart));
        return it == staff_.end() ? Role::Member : it->second;
    }

    bool has_grant(std::string_view supporter, std::string_view member) const override {
        return snapshot_.contains(GrantKey{supporter, member});
    }

    void open_grant(std::string_view supporter, std::string_view member) override {
        if (has_grant(supporter, member)) {
            touch(supporter, member);  // the common case: no SQLite on the message path
            return;
        }
        GrantRoster names{group_, display_name(supporter), std::string(member)};
        bool created = open_grant_records(server_.db(), grants_, server_.roster(),
                                          server_.domain(), supporter, member, names, unix_now());
        if (!created) {
            return;
        }
        snapshot_.insert({std::string(supporter), std::string(member)});
        m_.log().info("peersupport: grant opened");
        push_items(supporter, member);
        exchange_presence(supporter, member, false);
        exchange_presence(member, supporter, false);
    }

    bool end_grant(std::string_view supporter, std::string_view member) override {
        if (!end_grant_records(server_.db(), grants_, server_.roster(), server_.domain(),
                               supporter, member)) {
            return false;
        }
        snapshot_.erase({std::string(supporter), std::string(member)});
        after_end(supporter, member);
        m_.log().info("peersupport: grant ended");
        return true;
    }

    std::uint64_t add_relation(Relation relation) override {
        relations_.emplace(++next_relation_, std::move(relation));
        return next_relation_;
    }
    void remove_relation(std::uint64_t handle) override { relations_.erase(handle); }

    void refuse(StanzaEvent& e) const override {
        auto lang = e.lang();
        const auto& texts = server_.texts();
        auto chosen = texts.pick_lang("peersupport-refusal", lang);
        // The same condition a non-existent account produces (RFC 6121 §8.5.2.2), so a
        // member cannot tell whether the target exists or what role it has.
        e.reply_error("service-unavailable", texts.get("peersupport-refusal", lang), chosen);
    }

private:
    void register_texts() {
        auto& t = server_.texts();
        t.set("en", "peersupport-refusal",
              "This contact cannot be reached. Here you can write to the peer supporters who "
              "contacted you and to the team addresses; members cannot contact each other.");
        t.set("de", "peersupport-refusal",
              "Dieser Kontakt ist nicht erreichbar. Hier kannst du den Peersupporter*innen "
              "schreiben, die dich angeschrieben haben, und den Team-Adressen; Mitglieder "
              "können einander nicht anschreiben.");
        if (auto& en = m_.opt_string("refusal_text_en"); !en.empty()) {
            t.set("en", "peersupport-refusal", en);
        }
        if (auto& de = m_.opt_string("refusal_text_de"); !de.empty()) {
            t.set("de", "peersupport-refusal", de);
        }
        t.set("en", "peersupport-end-title", "End conversation");
        t.set("de", "peersupport-end-title", "Gespräch beenden");
        t.set("en", "peersupport-end-instructions",
              "The member will no longer be able to write to you; the contact disappears "
              "from both rosters.");
        t.set("de", "peersupport-end-instructions",
              "Das Mitglied kann dir danach nicht mehr schreiben; der Kontakt verschwindet aus "
              "beiden Kontaktlisten.");
        t.set("en", "peersupport-end-field", "Conversation");
        t.set("de", "peersupport-end-field", "Gespräch");
        t.set("en", "peersupport-end-done", "The conversation has been ended.");
        t.set("de", "peersupport-end-done", "Das Gespräch wurde beendet.");
        t.set("en", "peersupport-end-unknown", "There is no such conversation.");
        t.set("de", "peersupport-end-unknown", "Dieses Gespräch gibt es nicht.");
    }

    void apply_config_roles(const config::Config& config) {
        auto& users = server_.users();
        auto apply = [&](const std::vector<std::string>& jids, std::string_view role) {
            for (const auto& j : jids) {
                auto jid = Jid::parse(j);
                if (!jid || jid->local().empty() || jid->domain() != server_.domain()) {
                    m_.log().warn("peersupport: ignoring '", j, "' in [peersupport] ", role,
                                  "s: not an account of this server");
                    continue;
                }
                if (!users.set_role(jid->local(), role)) {
                    m_.log().warn("peersupport: [peersupport] ", role,
                                  "s lists an account that does not exist yet");
                }
            }
        };
        // Config wins over roles set with havenctl; admins last so they win over supporters.
        apply(config.get_list("peersupport", "supporters"), "supporter");
        apply(config.get_list("peersupport", "admins"), "admin");
        StringSet configured;
        for (const auto* list : {&config.get_list("peersupport", "supporters"),
                                 &config.get_list("peersupport", "admins")}) {
            for (const auto& j : *list) {
                if (auto jid = Jid::parse(j); jid && jid->domain() == server_.domain()) {
                    configured.insert(jid->local());
                }
            }
        }
        // A role the config took away is taken away (issue 11), on SIGHUP and also when the
        // entry went while the server was down: each account remembers that its role came
        // from the config (a marker in its own key-value store, erased with the account), so
        // the next start knows what the previous config gave. The account is a member again,
        // and load_staff() ends the grants it held.
        for (const auto& u : users.list()) {
            if (parse_role(u.role) == Role::Member || configured.contains(u.localpart)) {
                continue;
            }
            if (configured_staff_.contains(u.localpart) ||
                server_.kv().get(u.localpart, config_role_store, config_role_key)) {
                users.set_role(u.localpart, "member");
                server_.kv().remove(u.localpart, config_role_store, config_role_key);
                m_.log().info("peersupport: a configured staff role was removed");
            }
        }
        for (const auto& local : configured) {
            if (users.exists(local) && !server_.kv().get(local, config_role_store, config_role_key)) {
                server_.kv().put(local, config_role_store, config_role_key, "1");
            }
        }
        configured_staff_ = std::move(configured);
    }

    // An admin set this account's role by hand (havenctl): from now on it is the admin's, not
    // the config's, so a later config change does not take it away.
    void admin_set_role(const std::string& local) {
        if (!configured_staff_.contains(local)) {
            forget_config_role(server_.kv(), local);
        }
    }

    // Emitted inside the deletion's transaction, before the account's rows go: each of its
    // grants ends as any grant does, so the other side's roster loses the item the grant put
    // there, with the push (the sealed table has no foreign key to cascade from anyway).
    void user_deleted(const std::string& local) {
        for (const auto& g : grants_.list(local)) {
            touched_.erase({g.supporter, g.member});
            end_grant(g.supporter, g.member);
        }
    }

    // Accounts deleted without this module (an older havenctl, the sqlite3 CLI) leave grants
    // that name no account: they go at start.
    void remove_orphaned_grants() {
        auto& users = server_.users();
        for (const auto& g : grants_.list()) {
            if (!users.exists(g.supporter) || !users.exists(g.member)) {
                end_grant_records(server_.db(), grants_, server_.roster(), server_.domain(),
                                  g.supporter, g.member);
            }
        }
    }

    void load_staff() {
        staff_.clear();
        for (const auto& u : server_.users().list()) {
            auto role = parse_role(u.role);
            if (is_staff(role)) {
                staff_.emplace(u.localpart, role);
            }
        }
        end_grants_of_members();
    }

    // Role changes have consequences (issue 11): a grant needs a supporter or admin on its staff
    // side. Whoever was demoted (config reload, havenctl, or while the server was down) loses
    // the grants, with the roster items, pushes and unavailable presence that ending one gives.
    void end_grants_of_members() {
        for (const auto& g : grants_.list()) {
            if (!is_staff(role_of(g.supporter))) {
                end_grant(g.supporter, g.member);
            }
        }
    }

    GrantSet grant_set() const {
        GrantSet out;
        for (const auto& g : grants_.list()) {
            out.insert({g.supporter, g.member});
        }
        return out;
    }

    // havenctl grant end SUPPORTER MEMBER: the records go and both sides get the roster
    // removals and unavailable presence before havenctl prints its answer.
    void admin_end_grant(const AdminRequest& r, const AdminDone& done) {
        auto supporter = Jid::make(r.words[2], server_.domain());
        auto member = Jid::make(r.words[3], server_.domain());
        if (!supporter || !member || supporter->local().empty() || member->local().empty()) {
            done({false, "not JIDs of this server"});
            return;
        }
        if (!end_grant(supporter->local(), member->local())) {
            done({false, "no such grant"});
            return;
        }
        done({true, "ended the conversation grant " + supporter->bare().str() + " -> " +
                        member->bare().str()});
    }

    void sync_external_changes() {
        auto version = server_.db().data_version();
        if (version == data_version_) {
            return;
        }
        data_version_ = version;
        load_staff();
        auto now = grant_set();
        for (const auto& g : snapshot_) {
            if (!now.contains(g)) {
                // Ended from outside (havenctl): the records are gone; tell online clients.
                after_end(g.first, g.second);
            }
        }
        snapshot_ = std::move(now);
    }

    void touch(std::string_view supporter, std::string_view member) {
        const auto now = unix_now();
        if (auto it = touched_.find(GrantKey{supporter, member}); it != touched_.end()) {
            it->second = now;
        } else {
            touched_.emplace(std::pair{std::string(supporter), std::string(member)}, now);
        }
    }

    // One transaction for all the activity since the last flush; grants ended meanwhile are
    // skipped by the UPDATE matching nothing.
    void flush_touches() {
        if (touched_.empty()) {
            return;
        }
        storage::Transaction tx(server_.db());
        for (const auto& [g, when] : touched_) {
            grants_.touch(g.first, g.second, when);
        }
        tx.commit();
        touched_.clear();
    }

    void expire(std::int64_t days) {
        flush_touches();
        for (const auto& g : grants_.idle_since(unix_now() - days * 86400)) {
            end_grant(g.supporter, g.member);
        }
    }

    std::string display_name(std::string_view localpart) const {
        // The supporter's vCard nickname or full name when set, else the account name.
        if (auto stored = server_.kv().get(localpart, "vcard", "vcard")) {
            if (auto vcard = xml::parse_fragment(*stored)) {
                for (auto field : {"NICKNAME", "FN"}) {
                    if (auto text = vcard->child_text(field); !text.empty()) {
                        return text;
                    }
                }
            }
        }
        return std::string(localpart);
    }

    std::string bare(std::string_view local) const {
        return std::string(local) + "@" + server_.domain();
    }

    void push_items(std::string_view supporter, std::string_view member) {
        auto* roster = server_.service<xeps::RosterService>();
        if (!roster) {
            return;
        }
        if (auto item = server_.roster().get(member, bare(supporter))) {
            roster->push(member, *item);
        }
        if (auto item = server_.roster().get(supporter, bare(member))) {
            roster->push(supporter, *item);
        }
    }

    void after_end(std::string_view supporter, std::string_view member) {
        exchange_presence(supporter, member, true);
        exchange_presence(member, supporter, true);
        if (auto* roster = server_.service<xeps::RosterService>()) {
            roster->push_removed(member, bare(supporter));
            roster->push_removed(supporter, bare(member));
        }
    }

    // Sends the current presence (or unavailable) of each available resource of `from` to
    // the available resources of `to`, as a subscription change requires (RFC 6121 §3.1.5).
    void exchange_presence(std::string_view from, std::string_view to, bool unavailable) {
        auto target = Jid::make(to, server_.domain());
        if (!target) {
            return;
        }
        for (auto* s : server_.sessions().available(from)) {
            Element p("presence", std::string(ns::client));
            if (!unavailable && s->presence) {
                p = *s->presence;
            }
            if (unavailable) {
                p.attr("type", "unavailable");
            }
            p.attr("from", s->jid().str());
            p.attr("to", target->str());
            server_.router().deliver_to_available(*target, p);
        }
    }

    Flow check(StanzaEvent& e) {
        auto sender = role_of(e.from.local());
        bool local_account = (e.target == RouteTarget::Bare || e.target == RouteTarget::Full) &&
                             !e.to.local().empty();
        bool own = local_account && e.to.local() == e.from.local();
        if (is_staff(sender)) {
            if (local_account && !own && role_of(e.to.local()) == Role::Member) {
                if (blocked_by(e.to.local(), e.from)) {
                    // The member blocked this supporter (XEP-0191): no grant, roster items or
                    // presence; the blocking filter further on answers the stanza.
                    return Flow::Continue;
                }
                if (e.kind == StanzaKind::Iq && e.target == RouteTarget::Bare &&
                    e.type() == "get" && e.stanza.child("vCard", ns::vcard) &&
                    !may_see_profile(e.from.local(), e.to.local())) {
                    // A member's profile is for their contacts (issue 11): other staff get
                    // exactly what a missing account (or vCard) answers, XEP-0054 §3.3.
                    e.reply_error("service-unavailable");
                    return Flow::Stop;
                }
                if (!is_error_or_result(e.stanza)) {
                    // The member may answer this one, grant or not (answers.hpp).
                    answers_.sent(e.from.str(), e.to.local(), e.kind, e.stanza.attr("id"),
                                  AnswerBook::Clock::now());
                }
                if (e.kind == StanzaKind::Message && has_content(e.stanza) &&
                    server_.user_exists(e.to.local())) {
                    open_grant(e.from.local(), e.to.local());  // a no-op refresh if it exists
                }
            }
            return Flow::Continue;
        }
        PolicyQuery q;
        q.sender = sender;
        q.kind = e.kind;
        q.type = e.type();
        q.allow_remote = m_.opt_bool("members_may_contact_remote");
        switch (e.target) {
            case RouteTarget::Host: q.target = TargetClass::Server; break;
            case RouteTarget::Remote: q.target = TargetClass::Remote; break;
            case RouteTarget::Self: q.target = TargetClass::OwnAccount; break;
            case RouteTarget::Bare:
            case RouteTarget::Full:
                q.target = own ? TargetClass::OwnAccount : TargetClass::LocalAccount;
                break;
        }
        if (q.target == TargetClass::LocalAccount) {
            q.recipient = role_of(e.to.local());
            q.grant = is_staff(q.recipient) && has_grant(e.to.local(), e.from.local());
            if (is_staff(q.recipient) && !q.grant && is_error_or_result(e.stanza)) {
                q.answers_request = answers_.take(e.to.str(), e.from.local(), e.kind,
                                                  e.stanza.attr("id"),
                                                  AnswerBook::Clock::now());
            }
        }
        if (decide(q) == Verdict::Allow) {
            if (q.grant && e.kind == StanzaKind::Message) {
                touch(e.to.local(), e.from.local());
            }
            if (q.target == TargetClass::LocalAccount && is_staff(q.recipient) &&
                e.type() == "error") {
                // An error from a member reaches staff as the error alone: whatever else it
                // carries (a <body/>, a <status/>) would be a message nobody asked for.
                keep_only_error(e.stanza);
            }
            return Flow::Continue;
        }
        m_.log().debug("peersupport: refused <", e.stanza.name(), "/> from a member");
        refuse(e);
        return Flow::Stop;
    }

    bool may_see_profile(std::string_view staff, std::string_view member) const override {
        if (has_grant(staff, member)) {
            return true;
        }
        for (const auto& [handle, related] : relations_) {
            if (related(staff, member)) {
                return true;
            }
        }
        return false;
    }

    bool blocked_by(std::string_view member, const Jid& staff) const {
        auto* blocking = server_.service<xeps::BlockingService>();
        return blocking != nullptr && blocking->blocks(member, staff);
    }

    static void keep_only_error(Element& stanza) {
        std::erase_if(stanza.nodes(), [](const xml::Node& n) {
            return !n.element || n.element->name() != "error";
        });
    }

    void register_command() {
        auto* commands = server_.service<xeps::CommandRegistry>();
        if (!commands) {
            m_.log().warn("peersupport: ad-hoc commands module not loaded; no end command");
            return;
        }
        xeps::AdHocCommand cmd;
        cmd.node = std::string(end_node);
        cmd.name = "End conversation with a member";
        cmd.allowed = [this](const Jid& who, const Jid&) {
            return who.domain() == server_.domain() && is_staff(role_of(who.local()));
        };
        cmd.run = [this](const Jid& who, const Jid&, const Element* form, std::string_view lang) {
            return run_end_command(who, form, lang);
        };
        commands->add(std::move(cmd));
    }

    xeps::CommandStep run_end_command(const Jid& who, const Element* form, std::string_view lang) {
        bool admin = role_of(who.local()) == Role::Admin;
        xeps::CommandStep step;
        if (!form) {
            // Admins may end any grant; supporters their own.
            auto list = admin ? grants_.list() : grants_.list(who.local());
            auto x = xeps::make_form(server_.texts().get("peersupport-end-title", lang),
                                     server_.texts().get("peersupport-end-instructions", lang));
            auto& field = xeps::add_field(x, "conversation", "list-single",
                                          server_.texts().get("peersupport-end-field", lang));
            for (const auto& g : list) {
                if (!admin && g.supporter != who.local()) {
                    continue;
                }
                auto label = admin ? bare(g.supporter) + " → " + bare(g.member) : bare(g.member);
                xeps::add_option(field, label, bare(g.supporter) + " " + bare(g.member));
            }
            step.form = std::move(x);
            return step;
        }
        auto value = xeps::form_value(*form, "conversation");
        auto space = value.find(' ');
        auto s = Jid::parse(value.substr(0, space == std::string::npos ? 0 : space));
        auto mj = Jid::parse(space == std::string::npos ? "" : value.substr(space + 1));
        if (!s || !mj || (!admin && s->local() != who.local()) ||
            !end_grant(s->local(), mj->local())) {
            step.error = true;
            step.note = server_.texts().get("peersupport-end-unknown", lang);
            return step;
        }
        step.note = server_.texts().get("peersupport-end-done", lang);
        return step;
    }

    ModuleContext& m_;
    Server& server_;
    GrantStore grants_;
    AnswerBook answers_;
    std::map<std::uint64_t, Relation> relations_;  // add_relation()
    std::uint64_t next_relation_ = 0;
    std::string group_;
    std::unordered_map<std::string, Role> staff_;  // non-member accounts; everyone else is a member
    StringSet configured_staff_;  // localparts in [peersupport] supporters/admins (reserved)
    GrantSet snapshot_;  // every grant, kept in step with the database (no SELECT per message)
    // Last activity per grant since the last flush: written once a minute, not per message.
    std::map<std::pair<std::string, std::string>, std::int64_t, GrantLess> touched_;
    std::int64_t data_version_ = 0;
    std::unique_ptr<RoomRules> rooms_;  // the rules inside MUC rooms (rooms.cpp)
};

std::unique_ptr<Module> load(ModuleContext& m) { return std::make_unique<Module>(m); }

}  // namespace
}  // namespace haven::peersupport

HAVEN_MODULE(peersupport, haven::peersupport::load)
