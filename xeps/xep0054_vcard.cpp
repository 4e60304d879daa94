// XEP-0054: vcard-temp — one's own vCard (get/set) and other local users' vCards (get).
#include <optional>
#include <string>
#include <string_view>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view store = "vcard";  // sealed at rest by the server's KeyValueStore
constexpr std::string_view key = "vcard";


class Vcard {
public:
    explicit Vcard(ModuleContext& m)
        : server_(m.server()), max_bytes_(static_cast<std::size_t>(m.opt_int("max_bytes"))) {
        m.add_feature(std::string(ns::vcard));
        m.add_account_feature(std::string(ns::vcard));
        m.hook_iq(IqType::Get, Target::Bare, ns::vcard, [this](StanzaEvent& e) { return get(e); });
        m.hook_iq(IqType::Set, Target::Bare, ns::vcard, [this](StanzaEvent& e) { return set(e); });
    }

private:
    static const Element* payload(StanzaEvent& e) {
        const auto* v = e.stanza.child("vCard", ns::vcard);
        if (!v) {
            e.reply_error("bad-request", "expected <vCard xmlns='vcard-temp'/>");
        }
        return v;
    }

    Flow get(StanzaEvent& e) {
        if (!payload(e)) {
            return Flow::Stop;
        }
        const bool own = e.to.bare() == e.from.bare();
        std::optional<Element> card;
        // kv rows exist only for accounts, so a missing account simply has no vCard.
        if (auto stored = server_.kv().get(e.to.local(), store, key)) {
            card = xml::parse_fragment(*stored);
            if (!card) {
                server_.log().error("vcard: a stored vCard does not parse");
            }
        }
        if (!card) {
            if (!own) {
                // XEP-0054 §3.3: no vCard and no such user get the same error, so a lookup
                // cannot tell whether an account exists.
                e.reply_error("service-unavailable");
                return Flow::Stop;
            }
            // XEP-0054 §3.1: one's own missing vCard is an empty <vCard/>.
            card = Element("vCard", std::string(ns::vcard));
        }
        auto result = make_result(e.stanza);
        result.add(std::move(*card));
        e.reply(std::move(result));
        return Flow::Stop;
    }

    Flow set(StanzaEvent& e) {
        // XEP-0054 §3.2: only one's own vCard can be changed.
        if (e.to.bare() != e.from.bare()) {
            e.reply_error("forbidden");
            return Flow::Stop;
        }
        const auto* v = payload(e);
        if (!v) {
            return Flow::Stop;
        }
        const Element& card = *v;
        auto text = xml::serialize(card);
        if (text.size() > max_bytes_) {
            e.reply_error("policy-violation",
                          "the vCard is larger than " + std::to_string(max_bytes_) + " bytes");
            return Flow::Stop;
        }
        if (card.nodes().empty()) {
            // An empty vCard publishes nothing: keep no row (data minimisation).
            server_.kv().remove(e.from.local(), store, key);
        } else {
            server_.kv().put(e.from.local(), store, key, text);
        }
        e.reply(make_result(e.stanza));
        return Flow::Stop;
    }

    Server& server_;
    std::size_t max_bytes_;
};

std::unique_ptr<Vcard> load(ModuleContext& m) { return std::make_unique<Vcard>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(vcard, haven::xeps::load)
