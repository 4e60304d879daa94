// Functional addresses: module wiring. Reads the configuration, hooks the stanza routes and
// dispatches stanzas to the address, or to an inquiry's JID, to the parts that handle them.
//
// Shared team inboxes (beratung@domain) with one pseudonymous JID per inquiry for the staff,
// first-reply claims, handover and close (README.md). The parts:
//   shared.*    addresses, inquiry store, naming and delivery helpers
//   inquiries.* sender ↔ staff routing: fan-out, claim, forwarding
//   commands.*  staff commands (chat and XEP-0050 ad-hoc)
//   identity.*  presence, disco, vCard and ping of the address and its inquiry JIDs
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/post.hpp>

#include "modules/functional_addresses/commands.hpp"
#include "modules/functional_addresses/identity.hpp"
#include "modules/functional_addresses/inquiries.hpp"
#include "modules/functional_addresses/shared.hpp"
#include "modules/peersupport/peersupport.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "xeps/xep0077_register.hpp"

namespace haven::functional_addresses {
namespace {

class Module {
public:
    explicit Module(ModuleContext& m) : s_(m), commands_(s_), inquiries_(s_, commands_) {
        for (std::string kind : {"message", "presence", "iq"}) {
            for (std::string target : {"bare", "full"}) {
                auto handler = [this](StanzaEvent& e) { return route(e); };
                // Before the peer-support policy (and blocking): the address is no account.
                m.hook("pre-" + kind + "/" + target, handler, prio::policy + 100);
                // Stanzas routed by modules (presence broadcasts, bounces) arrive here.
                m.hook(kind + "/" + target, handler, prio::policy + 100);
            }
        }
        auto& s = s_.server;
        auto online =
            s.initial_presence.connect([this](Session& session) { send_presences(s_, session); });
        m.own_connection([&s, online] { s.initial_presence.disconnect(online); });
        auto deleted = s.user_deleted.connect([this](const std::string& l) { user_deleted(l); });
        m.own_connection([&s, deleted] { s.user_deleted.disconnect(deleted); });
        if (auto days = m.opt_int("closed_retention_days"); days > 0) {
            m.every(std::chrono::hours(1),
                    [this, days] { s_.store.purge_closed(unix_now() - days * 86400); });
        }
        // An address and its "address+token" JIDs must never become an account (issue 11).
        if (auto* names = s.service<xeps::NameReservations>()) {
            auto handle = names->add([this](std::string_view local) {
                // "address+anything", not only the tokens the address hands out.
                const std::string base(local.substr(0, local.find('+')));
                return s_.resolve(base).address != nullptr;
            });
            m.own_connection([&s, handle] {
                if (auto* n = s.service<xeps::NameReservations>()) {
                    n->remove(handle);
                }
            });
        }
        m.log().info("functional_addresses: ", s_.addresses.size(), " address(es)");
    }

    // Runs once the server is up, when every module has loaded (peersupport loads after us).
    void connect_peersupport() {
        auto& s = s_.server;
        auto* ps = s.service<peersupport::PeerSupport>();
        if (!ps) {
            return;
        }
        // Staff may see the profile of someone whose inquiry they serve (issue 11).
        auto handle = ps->add_relation([this](std::string_view staff, std::string_view member) {
            return serves_inquiry_of(staff, member);
        });
        s_.m.own_connection([&s, handle] {
            if (auto* p = s.service<peersupport::PeerSupport>()) {
                p->remove_relation(handle);
            }
        });
    }

    // Runs once the server is up, when every module (peersupport: roles) has loaded.
    void check_staff() {
        auto* ps = s_.server.service<peersupport::PeerSupport>();
        for (const auto& a : s_.addresses) {
            if (s_.server.user_exists(a.local)) {
                s_.m.log().warn("functional_addresses: an account with the localpart of ", a.jid(),
                                " exists; the functional address shadows it");
            }
            for (const auto& staff : a.staff) {
                auto local = Jid::parse(staff)->local();
                if (!s_.server.user_exists(local)) {
                    s_.m.log().warn("functional_addresses: staff of ", a.jid(),
                                    " lists an account that does not exist");
                } else if (ps && !peersupport::is_staff(ps->role_of(local))) {
                    s_.m.log().warn("functional_addresses: staff of ", a.jid(),
                                    " lists an account that is neither supporter nor admin");
                }
            }
        }
    }

private:
    // An active inquiry from `member` at an address whose staff includes `staff`.
    bool serves_inquiry_of(std::string_view staff, std::string_view member) const {
        auto staff_jid = Jid::make(staff, s_.server.domain());
        auto member_jid = Jid::make(member, s_.server.domain());
        if (!staff_jid || !member_jid) {
            return false;
        }
        for (const auto& a : s_.addresses) {
            if (s_.is_staff_of(a, *staff_jid) && s_.store.active(a.local, member_jid->str())) {
                return true;
            }
        }
        return false;
    }

    Flow route(StanzaEvent& e) {
        if (e.to.local().empty() || !s_.server.is_local(e.to)) {
            return Flow::Continue;
        }
        auto target = s_.resolve(e.to.local());
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
        auto inquiry = s_.staff_inquiry(target, e.from);
        if (!inquiry) {
            return Flow::Continue;
        }
        to_inquiry(e, a, *inquiry);
        return Flow::Stop;
    }

    // From anyone.
    void to_address(StanzaEvent& e, const AddressConfig& a) {
        switch (e.kind) {
            case StanzaKind::Message:
                inquiries_.from_sender(e, a);
                break;
            case StanzaKind::Presence:
                answer_presence(s_, e, a.jid(), a.name);
                break;
            case StanzaKind::Iq:
                answer_iq(e, a.name);
                break;
            case StanzaKind::Other:
                break;
        }
    }

    // From the staff of the inquiry's address (route checked that).
    void to_inquiry(StanzaEvent& e, const AddressConfig& a, Inquiry& i) {
        switch (e.kind) {
            case StanzaKind::Message:
                inquiries_.from_staff(e, a, i);
                break;
            case StanzaKind::Presence:
                answer_presence(s_, e, s_.pseudo_jid(a, i.token), s_.inquiry_title(a, i, e.lang()));
                break;
            case StanzaKind::Iq:
                answer_iq(e, s_.inquiry_title(a, i, e.lang()));
                break;
            case StanzaKind::Other:
                break;
        }
    }

    // Data minimisation (README.md §8): a deleted account's inquiries as sender go, its
    // claims become open again for the rest of the staff.
    void user_deleted(const std::string& local) {
        auto jid = Jid::make(local, s_.server.domain());
        if (!jid) {
            return;
        }
        s_.store.remove_sender(jid->str());
        s_.store.release_claims(jid->str(), unix_now());
    }

    // Declaration order is construction order: the parts hold references into s_, and the
    // commands (which unregister themselves) go before the state they use.
    Shared s_;
    Commands commands_;
    Inquiries inquiries_;
};

std::shared_ptr<Module> load(ModuleContext& m) {
    auto module = std::make_shared<Module>(m);
    // Roles are applied by the peersupport module, which loads after this one.
    boost::asio::post(m.server().io(), [weak = std::weak_ptr<Module>(module)] {
        if (auto mod = weak.lock()) {
            mod->connect_peersupport();
            mod->check_staff();
        }
    });
    return module;
}

}  // namespace

}  // namespace haven::functional_addresses

HAVEN_MODULE(functional_addresses, haven::functional_addresses::load)
