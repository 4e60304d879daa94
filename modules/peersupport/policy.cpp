// The restricted chat policy as a pure decision function.
#include "modules/peersupport/policy.hpp"

namespace haven::peersupport {

Role parse_role(std::string_view role) {
    if (role == "admin") {
        return Role::Admin;
    }
    if (role == "supporter") {
        return Role::Supporter;
    }
    return Role::Member;
}

std::string_view role_name(Role role) {
    switch (role) {
        case Role::Admin: return "admin";
        case Role::Supporter: return "supporter";
        case Role::Member: break;
    }
    return "member";
}

Verdict decide(const PolicyQuery& q) {
    // Supporters and admins may contact anyone.
    if (is_staff(q.sender)) {
        return Verdict::Allow;
    }
    switch (q.target) {
        case TargetClass::Server:
        case TargetClass::OwnAccount:
            return Verdict::Allow;
        case TargetClass::Remote:
            return q.allow_remote ? Verdict::Allow : Verdict::Refuse;
        case TargetClass::LocalAccount:
            break;
    }
    if (is_staff(q.recipient)) {
        if (q.grant) {
            return Verdict::Allow;  // the supporter wrote first: the member may answer
        }
        // Answers to what a supporter sent (IQ results, errors) don't open a conversation:
        // staff may query a member without a grant and must get the reply. Only real answers:
        // a "result" or "error" nobody asked for would be a way to put text in front of staff.
        bool answer = q.type == "error" || (q.kind == StanzaKind::Iq && q.type == "result");
        if (answer && q.answers_request) {
            return Verdict::Allow;
        }
    }
    // Withdrawing a subscription only ever reduces contact, and reaches nobody who has no
    // roster relation with the member (RFC 6121 §3.2/§3.3 ignore it then), so it reveals nothing.
    if (q.kind == StanzaKind::Presence && (q.type == "unsubscribe" || q.type == "unsubscribed")) {
        return Verdict::Allow;
    }
    return Verdict::Refuse;
}

bool has_content(const Element& message) {
    auto type = message.attr("type");
    if (!(type.empty() || type == "chat" || type == "normal")) {
        return false;
    }
    if (!message.child_text("body").empty()) {
        return true;
    }
    // End-to-end encrypted payloads and out-of-band files count as content too.
    static constexpr std::string_view content_ns[] = {
        "eu.siacs.conversations.axolotl", "urn:xmpp:omemo:2", "jabber:x:oob",
        "urn:xmpp:openpgp:0"};
    for (const auto& node : message.nodes()) {
        if (!node.element) {
            continue;
        }
        for (auto ns : content_ns) {
            if (node.element->ns() == ns) {
                return true;
            }
        }
    }
    return false;
}

}  // namespace haven::peersupport
