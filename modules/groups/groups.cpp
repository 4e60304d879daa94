// Group rooms: each [[groups]] entry is a members-only room whose admitted members see the next
// meeting and, only while a meeting's link window is open, their personal join link.
#include <sodium.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "modules/groups/group_config.hpp"
#include "modules/groups/join_links.hpp"
#include "modules/groups/meeting_store.hpp"
#include "modules/peersupport/peersupport.hpp"
#include "server/core/module.hpp"
#include "server/core/random_id.hpp"
#include "server/core/server.hpp"
#include "server/core/session_registry.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/muc.hpp"
#include "xeps/xep0050_commands.hpp"

namespace haven::groups {
namespace {

constexpr std::string_view ns_oob = "jabber:x:oob";
constexpr std::string_view ns_hints = "urn:xmpp:hints";
// XEP-0128 extended room info (XEP-0068 FORM_TYPE in a namespace of our own).
constexpr std::string_view info_form_type = "urn:haven:params:group:0";

std::string read_secret(const std::string& path) {
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    auto s = buf.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.pop_back();
    }
    if (!in.good() && !in.eof()) {
        s.clear();
    }
    if (s.empty()) {
        throw std::runtime_error("group_rooms: cannot read a secret from " + path);
    }
    return s;
}

std::string random_id() { return random_hex(5); }

void register_texts(Texts& t) {
    t.set_en_de("groups-next", "Next meeting: {title}, {when} ({zone}).",
                "Nächstes Treffen: {title}, {when} ({zone}).");
    t.set_en_de("groups-link", "{title} begins {when}. Your personal link: {url}",
                "{title} beginnt {when}. Dein persönlicher Link: {url}");
}

class Module {
public:
    explicit Module(ModuleContext& m)
        : m_(m),
          server_(m.server()),
          before_(m.opt_int("link_before_minutes") * 60),
          max_meetings_(static_cast<std::size_t>(m.opt_int("max_meetings"))),
          store_(server_.db(), server_.secret_box()) {
        register_texts(server_.texts());
        if (const auto* node = server_.config().get_node("", "groups")) {
            for (auto& g : parse_groups(*node)) {
                Group group{std::move(g), {}};
                if (group.config.link != LinkKind::Plain) {
                    group.secret = read_secret(group.config.secret_file);
                }
                groups_.push_back(std::move(group));
            }
        }
        muc_ = server_.service<xeps::muc::MucService>();
        if (!muc_) {
            if (!groups_.empty()) {
                m.log().warn("group_rooms: the muc module is not loaded; groups have no rooms");
            }
            return;
        }
        for (const auto& g : groups_) {
            if (g.config.room.domain() != muc_->domain()) {
                throw std::runtime_error("group " + g.config.id + ": room " + g.config.room.str() +
                                         " is not on " + muc_->domain());
            }
            muc_->ensure_room(g.config.room, g.config.name, g.config.supporters);
        }
        join_handle_ = muc_->add_join_listener(
            [this](const Jid& room, const xeps::muc::MucService::Present& who, const Jid& session,
                   std::string_view lang) { joined(room, who, session, lang); });
        info_handle_ = muc_->add_info_provider(
            [this](const Jid& room, const Jid& requester, std::string_view lang) {
                return info(room, requester, lang);
            });
        m.every(std::chrono::seconds(5), [this] { tick(); });
        auto advanced = server_.clock_advanced.connect([this] { tick(); });
        m.own_connection([&s = server_, advanced] { s.clock_advanced.disconnect(advanced); });
        m.admin_command("meeting add", 6, [this](const AdminRequest& r, const AdminDone& done) {
            done(admin_add(r.words));
        });
        m.admin_command("meeting list", 1, [this](const AdminRequest& r, const AdminDone& done) {
            done(admin_list(r.words[2]));
        });
        m.admin_command("meeting remove", 2, [this](const AdminRequest& r, const AdminDone& done) {
            done(admin_remove(r.words[2], r.words[3]));
        });
        register_commands();
        m.log().info("group_rooms: ", groups_.size(), " group room(s)");
    }

    ~Module() {
        if (auto* commands = server_.service<xeps::CommandRegistry>()) {
            for (auto node : {node_add, node_list, node_remove, node_admit}) {
                commands->remove(node);
            }
        }
        if (auto* muc = server_.service<xeps::muc::MucService>(); muc && muc == muc_) {
            muc->remove_join_listener(join_handle_);
            muc->remove_info_provider(info_handle_);
        }
    }

private:
    struct Group {
        GroupConfig config;
        std::string secret;
    };
    struct Due {
        MeetingConfig meeting;
        Occurrence when;
    };

    std::int64_t now() const { return server_.clock().unix_seconds(); }

    const Group* group_of_room(const Jid& room) const {
        for (const auto& g : groups_) {
            if (g.config.room == room) {
                return &g;
            }
        }
        return nullptr;
    }
    const Group* group_by_id(std::string_view id) const {
        for (const auto& g : groups_) {
            if (g.config.id == id) {
                return &g;
            }
        }
        return nullptr;
    }

    std::vector<MeetingConfig> meetings(const Group& g) const {
        auto all = g.config.meetings;
        for (auto& m : store_.list(g.config.id, g.config.time_zone)) {
            all.push_back(std::move(m));
        }
        return all;
    }

    // The meeting whose link window is open now (the earliest, if several overlap).
    std::optional<Due> open_window(const Group& g, std::int64_t t) const {
        std::optional<Due> best;
        for (const auto& m : meetings(g)) {
            auto occ = current_or_next(m.time, t);
            if (occ && t >= occ->start - before_ && t < occ->end &&
                (!best || occ->start < best->when.start)) {
                best = Due{m, *occ};
            }
        }
        return best;
    }

    std::optional<Due> next_meeting(const Group& g, std::int64_t t) const {
        std::optional<Due> best;
        for (const auto& m : meetings(g)) {
            auto occ = current_or_next(m.time, t);
            if (occ && (!best || occ->start < best->when.start)) {
                best = Due{m, *occ};
            }
        }
        return best;
    }

    static bool admitted(std::string_view affiliation) {
        return affiliation == "member" || affiliation == "admin" || affiliation == "owner";
    }

    // The link this member gets: personal where the group's video service supports it, so a
    // forwarded link does not let a stranger in.
    std::string link_for(const Group& g, const Due& d, const std::string& nick) const {
        switch (g.config.link) {
            case LinkKind::Plain:
                return d.meeting.url;
            case LinkKind::Jitsi:
                // Valid from the window's start to the meeting's end, not longer.
                return jitsi_join_url(JitsiLink{d.meeting.url, g.config.jitsi_app_id, g.secret},
                                      nick, d.when.end, d.when.start - before_);
            case LinkKind::Bbb: {
                auto sum = parse_bbb_checksum(g.config.bbb_checksum).value_or(BbbChecksum::Sha256);
                return bbb_join_url(
                    BbbLink{g.config.bbb_api, g.config.bbb_meeting_id, g.secret, sum}, nick);
            }
        }
        return d.meeting.url;
    }

    std::string when_text(const Group& g, std::int64_t t, std::string_view lang) const {
        return format_for_people(t, g.config.time_zone, lang);
    }

    std::string session_lang(const Jid& session) const {
        if (auto* s = server_.sessions().find(session)) {
            return s->lang();
        }
        return {};
    }

    // A message from the room to one session: the meeting link (body and XEP-0066), marked
    // for no archive (XEP-0334), sent to that session only and never kept in the room's history.
    void send_link(const Group& g, const Due& d, const std::string& nick, const Jid& session,
                   std::string_view lang) {
        std::string url;
        try {
            url = link_for(g, d, nick);
        } catch (const std::exception& e) {
            // A member gets no link rather than a broken one; the entering itself went fine.
            m_.log().warn("group_rooms: no link for group ", g.config.id, ": ", e.what());
            return;
        }
        Element msg("message", std::string(ns::client));
        msg.attr("from", g.config.room.str())
            .attr("to", session.str())
            .attr("type", "groupchat")
            .attr("id", "meeting-" + random_id());
        msg.add(Element("body", std::string(ns::client)))
            .text(fill(server_.texts().get("groups-link", lang),
                       {{"{title}", d.meeting.title},
                        {"{when}", when_text(g, d.when.start, lang)},
                        {"{url}", url}}));
        auto& oob = msg.add(Element("x", std::string(ns_oob)));
        oob.add(Element("url", std::string(ns_oob))).text(url);
        oob.add(Element("desc", std::string(ns_oob))).text(d.meeting.title);
        msg.add(Element("no-store", std::string(ns_hints)));
        msg.add(Element("no-permanent-store", std::string(ns_hints)));
        server_.router().route(std::move(msg));
    }

    void send_next(const Group& g, const Jid& session, std::string_view lang) {
        auto next = next_meeting(g, now());
        if (!next) {
            return;
        }
        Element msg("message", std::string(ns::client));
        msg.attr("from", g.config.room.str())
            .attr("to", session.str())
            .attr("type", "groupchat")
            .attr("id", "next-" + random_id());
        msg.add(Element("body", std::string(ns::client)))
            .text(fill(server_.texts().get("groups-next", lang),
                       {{"{title}", next->meeting.title},
                        {"{when}", when_text(g, next->when.start, lang)},
                        {"{zone}", g.config.time_zone}}));
        msg.add(Element("no-store", std::string(ns_hints)));
        server_.router().route(std::move(msg));
    }

    void joined(const Jid& room, const xeps::muc::MucService::Present& who, const Jid& session,
                std::string_view lang) {
        const auto* g = group_of_room(room);
        if (!g || !admitted(who.affiliation)) {
            return;
        }
        send_next(*g, session, lang);
        if (auto d = open_window(*g, now())) {
            send_link(*g, *d, who.nick, session, lang);
        }
    }

    // At each window's start, everyone admitted and present gets the link once.
    void tick() {
        const auto t = now();
        std::erase_if(announced_, [t](const auto& kv) { return kv.second <= t; });
        for (const auto& g : groups_) {
            auto d = open_window(g, t);
            if (!d) {
                continue;
            }
            auto key = g.config.id + "/" + d->meeting.id + "/" + std::to_string(d->when.start);
            if (!announced_.emplace(std::move(key), d->when.end).second) {
                continue;
            }
            for (const auto& who : muc_->occupants(g.config.room)) {
                if (!admitted(who.affiliation)) {
                    continue;
                }
                for (const auto& session : who.sessions) {
                    send_link(g, *d, who.nick, session, session_lang(session));
                }
            }
        }
    }

    std::optional<Element> info(const Jid& room, const Jid& requester, std::string_view lang) {
        const auto* g = group_of_room(room);
        if (!g || !admitted(muc_->affiliation(room, requester.bare()))) {
            return std::nullopt;  // the schedule is for the group's members
        }
        auto form = xeps::make_typed_form("result", info_form_type);
        xeps::add_field(form, "group#time_zone", {}, "Time zone", g->config.time_zone);
        if (auto next = next_meeting(*g, now())) {
            xeps::add_field(form, "group#next_title", {}, "Next meeting", next->meeting.title);
            xeps::add_field(form, "group#next_start", {}, "Starts (UTC)",
                            xep82_datetime(next->when.start));
            xeps::add_field(form, "group#next_start_text", {}, "Starts",
                            when_text(*g, next->when.start, lang));
        }
        return form;
    }

    // ---- havenctl group meeting add|list|remove ----

    AdminReply admin_add(const std::vector<std::string>& w) {
        // meeting add GROUP TITLE START MINUTES REPEAT URL
        const auto* g = group_by_id(w[2]);
        if (!g) {
            return {false, "no such group: " + w[2]};
        }
        return add_meeting(*g, w[3], w[4], w[5], w[6], w[7]);
    }

    AdminReply add_meeting(const Group& group, const std::string& title, const std::string& when,
                           const std::string& duration, const std::string& repeat_text,
                           const std::string& url) {
        const auto* g = &group;
        MeetingConfig m;
        m.id = random_id();
        m.title = title;
        auto start = parse_local_datetime(when);
        int minutes = 0;
        auto [p, ec] = std::from_chars(duration.data(), duration.data() + duration.size(), minutes);
        auto repeat = parse_repeat(repeat_text);
        if (m.title.empty() || m.title.size() > 200) {
            return {false, "the title must be 1 to 200 characters"};
        }
        if (!start) {
            return {false, "start must be a local time like 2026-12-08T18:00"};
        }
        if (ec != std::errc{} || p != duration.data() + duration.size() || minutes < 1 ||
            minutes > 24 * 60) {
            return {false, "the duration must be 1 to 1440 minutes"};
        }
        if (!repeat) {
            return {false, "repeat must be none, weekly or biweekly"};
        }
        if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
            return {false, "the URL must start with https://"};
        }
        if (meetings(*g).size() >= max_meetings_) {
            return {false, "the group has [group_rooms] max_meetings meetings already"};
        }
        m.time = MeetingTime{*start, g->config.time_zone, minutes, *repeat};
        m.url = url;
        store_.add(g->config.id, m);
        tick();
        auto next = current_or_next(m.time, now());
        return {true, "meeting " + m.id + " added" +
                          (next ? "; next: " + xep82_datetime(next->start) : "; it is over")};
    }

    AdminReply admin_list(const std::string& id) {
        const auto* g = group_by_id(id);
        if (!g) {
            return {false, "no such group: " + id};
        }
        std::string out;
        for (const auto& m : meetings(*g)) {
            auto next = current_or_next(m.time, now());
            out += m.id + "  " + m.title + "  " + format_local_datetime(m.time.start) + " " +
                   g->config.time_zone + "  " + std::to_string(m.time.duration_minutes) + " min  " +
                   std::string(repeat_name(m.time.repeat)) +
                   "  next: " + (next ? xep82_datetime(next->start) : std::string("none")) + "\n";
        }
        if (out.empty()) {
            return {true, "no meetings"};
        }
        out.pop_back();
        return {true, out};
    }

    AdminReply admin_remove(const std::string& id, const std::string& meeting) {
        const auto* g = group_by_id(id);
        if (!g) {
            return {false, "no such group: " + id};
        }
        if (!store_.remove(g->config.id, meeting)) {
            return {false,
                    "no such meeting (meetings from the config are changed there): " + meeting};
        }
        return {true, "meeting " + meeting + " removed"};
    }

    // ---- ad-hoc commands on the group's room (XEP-0050), for its owners and admins ----

    static constexpr std::string_view node_add = "urn:haven:group:meeting-add";
    static constexpr std::string_view node_list = "urn:haven:group:meetings";
    static constexpr std::string_view node_remove = "urn:haven:group:meeting-remove";
    static constexpr std::string_view node_admit = "urn:haven:group:admit";

    bool room_admin(const Jid& who, const Jid& room) const {
        const auto a = muc_->affiliation(room, who.bare());
        return a == "owner" || a == "admin";
    }

    static xeps::CommandStep note(AdminReply r) {
        xeps::CommandStep step;
        step.note = std::move(r.text);
        step.error = !r.ok;
        return step;
    }

    void register_commands() {
        auto* commands = server_.service<xeps::CommandRegistry>();
        if (!commands) {
            m_.log().warn("group_rooms: ad-hoc commands module not loaded; no room commands");
            return;
        }
        auto add = [&](std::string_view node, const char* name, auto run) {
            xeps::AdHocCommand cmd;
            cmd.node = std::string(node);
            cmd.name = name;
            cmd.at = [this](const Jid& entity) { return group_of_room(entity) != nullptr; };
            cmd.allowed = [this](const Jid& who, const Jid& room) { return room_admin(who, room); };
            cmd.run = [this, run](const Jid& who, const Jid& room, const Element* form,
                                  std::string_view lang) {
                return run(*group_of_room(room), who, form, lang);
            };
            commands->add(std::move(cmd));
        };
        add(node_add, "Add a meeting",
            [this](const Group& g, const Jid&, const Element* form, std::string_view) {
                if (!form) {
                    xeps::CommandStep step;
                    auto f = xeps::make_form("Add a meeting to " + g.config.name,
                                             "Times are local to " + g.config.time_zone + ".");
                    xeps::add_field(f, "title", "text-single", "Title");
                    xeps::add_field(f, "start", "text-single", "Start (YYYY-MM-DDTHH:MM)");
                    xeps::add_field(f, "duration", "text-single", "Duration (minutes)", "60");
                    auto& r = xeps::add_field(f, "repeat", "list-single", "Repeats", "weekly");
                    for (auto v : {"none", "weekly", "biweekly"}) {
                        xeps::add_option(r, v, v);
                    }
                    xeps::add_field(f, "url", "text-single", "Meeting URL");
                    step.form = std::move(f);
                    return step;
                }
                return note(add_meeting(
                    g, xeps::form_value(*form, "title"), xeps::form_value(*form, "start"),
                    xeps::form_value(*form, "duration"), xeps::form_value(*form, "repeat"),
                    xeps::form_value(*form, "url")));
            });
        add(node_list, "List meetings",
            [this](const Group& g, const Jid&, const Element*, std::string_view) {
                return note(admin_list(g.config.id));
            });
        add(node_remove, "Remove a meeting",
            [this](const Group& g, const Jid&, const Element* form, std::string_view) {
                if (!form) {
                    xeps::CommandStep step;
                    auto f = xeps::make_form("Remove a meeting", {});
                    auto& which = xeps::add_field(f, "meeting", "list-single", "Meeting");
                    for (const auto& m : store_.list(g.config.id, g.config.time_zone)) {
                        xeps::add_option(which,
                                         m.title + " (" + format_local_datetime(m.time.start) + ")",
                                         m.id);
                    }
                    step.form = std::move(f);
                    return step;
                }
                return note(admin_remove(g.config.id, xeps::form_value(*form, "meeting")));
            });
        add(node_admit, "Admit a member",
            [this](const Group& g, const Jid& who, const Element* form, std::string_view) {
                if (!form) {
                    xeps::CommandStep step;
                    auto f = xeps::make_form("Admit a member to " + g.config.name,
                                             "A member you have a conversation with.");
                    xeps::add_field(f, "jid", "jid-single", "Member");
                    step.form = std::move(f);
                    return step;
                }
                return note(admit(g, who, xeps::form_value(*form, "jid")));
            });
    }

    // A supporter admits a member they already talk to (a peer-support grant): the member
    // need not ask, and the supporter learns nothing new about them.
    AdminReply admit(const Group& g, const Jid& who, const std::string& text) {
        auto member = Jid::parse(text);
        if (!member || member->local().empty() || member->domain() != server_.domain()) {
            return {false, "not an account of this server: " + text};
        }
        auto* policy = server_.service<peersupport::PeerSupport>();
        const bool admin = policy && policy->role_of(who.local()) == peersupport::Role::Admin;
        if (policy && !admin && !policy->has_grant(who.local(), member->local())) {
            return {false, "you have no conversation with " + member->bare().str()};
        }
        const auto now = muc_->affiliation(g.config.room, member->bare());
        if (admitted(now)) {
            return {true, member->bare().str() + " is already a member"};
        }
        if (now == "outcast") {
            return {false, member->bare().str() + " is banned from this room"};
        }
        if (!muc_->set_affiliation(g.config.room, member->bare(), "member")) {
            return {false, "could not change the member list"};
        }
        return {true, member->bare().str() + " is now a member of " + g.config.name};
    }

    ModuleContext& m_;
    Server& server_;
    std::int64_t before_;
    std::size_t max_meetings_;
    MeetingStore store_;
    std::vector<Group> groups_;
    xeps::muc::MucService* muc_ = nullptr;
    std::uint64_t join_handle_ = 0;
    std::uint64_t info_handle_ = 0;
    std::map<std::string, std::int64_t> announced_;  // group/meeting/start -> its end
};

std::unique_ptr<Module> load(ModuleContext& m) {
    return std::make_unique<Module>(m);
}

}  // namespace
}  // namespace haven::groups

HAVEN_MODULE(group_rooms, haven::groups::load)
