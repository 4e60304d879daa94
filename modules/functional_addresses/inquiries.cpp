// Inquiry routing between a sender and the staff: new inquiries, fan-out, claim, forwarding
// (README.md §4.1–4.5).
#include "modules/functional_addresses/inquiries.hpp"

#include "modules/functional_addresses/stanzas.hpp"
#include "modules/peersupport/policy.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::functional_addresses {

// ---- sender → staff ----

void Inquiries::from_sender(StanzaEvent& e, const AddressConfig& a) {
    auto type = e.type();
    if (type == "error" || type == "headline") {
        return;  // nothing to answer, nobody to show it to
    }
    if (type == "groupchat") {
        e.reply_error("service-unavailable");  // as an account does (RFC 6121 §8.5.2.1.1)
        return;
    }
    if (s_.resolve(e.from.local()).address && s_.server.is_local(e.from)) {
        return;  // from a functional address itself: never loop
    }
    const auto sender = e.from.bare().str();
    auto inquiry = s_.store.active(a.local, sender);
    if (!peersupport::has_content(e.stanza)) {
        // Typing notifications and the like reach the claimer only, and only once claimed.
        if (inquiry && inquiry->state == State::Claimed) {
            forward_chat_state(e.stanza, s_.pseudo_jid(a, inquiry->token), inquiry->claimed_by);
        }
        return;
    }
    const auto now = unix_now();
    bool fresh = !inquiry;
    if (fresh) {
        // A token is never one an account "<address>+<token>" already uses.
        inquiry = s_.store.create(a.local, sender, now, [this, &a](std::string_view token) {
            return s_.server.user_exists(a.local + "+" + std::string(token));
        });
        s_.m.log().info("functional_addresses: new inquiry at ", a.jid());
        auto_reply(e, a, sender);
    } else {
        s_.store.touch(inquiry->token, now);
    }
    const auto from = s_.pseudo_jid(a, inquiry->token);
    if (inquiry->state == State::Claimed) {
        s_.deliver_to_staff(to_staff(e.stanza, a, *inquiry, inquiry->claimed_by));
        return;
    }
    for (const auto& staff : a.staff) {
        if (staff == sender) {
            continue;
        }
        if (fresh) {
            // The sender's JID (or pseudonym) goes in a notice of its own, so the sender's
            // body reaches the staff untouched (README.md §10.3).
            auto lang = s_.staff_lang(staff);
            auto label = s_.sender_label(a, *inquiry, lang);
            auto key = a.show_sender == ShowSender::Jid ? "fa-intro-jid" : "fa-intro-pseudonym";
            s_.deliver_to_staff(text_message(
                from, staff, lang,
                fill(s_.text(key, lang), {{"{address}", a.name}, {"{sender}", label}}), label));
        }
        s_.deliver_to_staff(to_staff(e.stanza, a, *inquiry, staff));
    }
}

void Inquiries::auto_reply(StanzaEvent& e, const AddressConfig& a, const std::string& sender) {
    if (a.auto_reply_en.empty() && a.auto_reply_de.empty()) {
        return;
    }
    auto key = "fa-auto-reply/" + a.local;
    auto lang = e.lang();
    s_.server.router().route(text_message(a.jid(), sender, s_.server.texts().pick_lang(key, lang),
                                          s_.server.texts().get(key, lang)));
}

// A copy of the sender's message for one staff member, from the inquiry's JID.
Element Inquiries::to_staff(const Element& original, const AddressConfig& a, const Inquiry& i,
                            const std::string& staff) {
    auto out = chat_message(s_.pseudo_jid(a, i.token), staff);
    copy_payload(original, out, {});
    out.add(nick(s_.sender_label(a, i, s_.staff_lang(staff))));
    return out;
}

// ---- staff → sender ----

void Inquiries::from_staff(StanzaEvent& e, const AddressConfig& a, Inquiry& i) {
    auto type = e.type();
    if (type == "error" || type == "headline" || type == "groupchat") {
        return;  // bounces of our own copies, or nothing the sender should see
    }
    const auto staff = e.from.bare().str();
    if (commands_.handle_text(e, a, i, staff)) {
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
        if (s_.store.claim(i.token, staff, now)) {
            i.state = State::Claimed;
            i.claimed_by = staff;
            s_.m.log().info("functional_addresses: inquiry at ", a.jid(), " claimed");
            for (const auto& other : a.staff) {
                if (other != staff) {
                    s_.notify(a, i, other, "fa-taken", {{"{staff}", s_.staff_label(staff)}});
                }
            }
        } else if (auto again = s_.store.find(i.token)) {
            i = *again;
        }
    }
    if (i.state == State::Closed) {
        e.reply_error("gone", s_.text("fa-closed", lang), s_.pick(lang));
        return;
    }
    if (i.state == State::Claimed && i.claimed_by != staff) {
        e.reply_error(
            "not-allowed",
            fill(s_.text("fa-already-taken", lang), {{"{staff}", s_.staff_label(i.claimed_by)}}),
            s_.pick(lang));
        return;
    }
    s_.store.touch(i.token, now);
    s_.server.router().route(to_sender(e.stanza, a, i, staff));
}

// A supporter's reply as the sender gets it: from the functional address, never with a
// supporter's JID (README.md §8).
Element Inquiries::to_sender(const Element& original, const AddressConfig& a, const Inquiry& i,
                             const std::string& staff) {
    auto out = chat_message(a.jid(), i.sender);
    copy_payload(original, out, a.staff);
    if (a.reply_nick) {
        // The address's name or the supporter's configured pseudonym: never an account name
        // or a vCard nickname, which may be the supporter's real name.
        auto p = a.pseudonyms.find(staff);
        out.add(nick(p != a.pseudonyms.end() ? p->second : a.name));
    }
    return out;
}

// ---- both directions ----

// Only the chat state crosses, in a message of its own; the first one found is enough.
void Inquiries::forward_chat_state(const Element& original, const std::string& from,
                                   const std::string& to) {
    for (const auto* child : original.children()) {
        if (is_chat_state(*child)) {
            auto out = chat_message(from, to);
            out.add(*child);
            s_.server.router().route(std::move(out));
            return;
        }
    }
}

}  // namespace haven::functional_addresses
