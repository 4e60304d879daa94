// XEP-0049: Private XML Storage — a user's own XML fragments, keyed by element name + namespace.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view store = "private";


// Clark notation, "{namespace}name": unambiguous because an element name cannot contain '}'.
std::string key_of(const Element& e) { return "{" + e.ns() + "}" + e.name(); }

class PrivateStorage {
public:
    explicit PrivateStorage(ModuleContext& m)
        : server_(m.server()),
          max_bytes_(static_cast<std::size_t>(m.opt_int("max_bytes"))),
          max_items_(static_cast<std::size_t>(m.opt_int("max_items"))),
          quota_bytes_(static_cast<std::size_t>(m.opt_int("quota_bytes"))) {
        m.add_feature(std::string(ns::private_xml));
        m.hook_iq(IqType::Get, Target::Bare, ns::private_xml,
                  [this](StanzaEvent& e) { return handle(e, false); });
        m.hook_iq(IqType::Set, Target::Bare, ns::private_xml,
                  [this](StanzaEvent& e) { return handle(e, true); });
    }

private:
    // Returns the fragments of a well-formed request, or replies with the error and nullopt.
    std::optional<std::vector<const Element*>> fragments(StanzaEvent& e) const {
        const auto* query = e.stanza.child("query", ns::private_xml);
        if (!query) {
            e.reply_error("bad-request", "expected <query xmlns='jabber:iq:private'/>");
            return std::nullopt;
        }
        auto list = query->children();
        // XEP-0049 §2.3: at least one child in a namespace of its own; the stream and
        // private namespaces are reserved.
        if (list.empty()) {
            e.reply_error("not-acceptable", "the query needs a child element");
            return std::nullopt;
        }
        // Nobody stores more than max_items_ fragments, so no request names more: a get of
        // thousands of names would cost as many lookups and could answer each with a fragment
        // of up to max_bytes_ (hundreds of MB from one stanza).
        if (list.size() > max_items_) {
            e.reply_error("policy-violation", "too many fragments in one request");
            return std::nullopt;
        }
        for (const auto* f : list) {
            if (f->ns().empty() || f->ns() == ns::client || f->ns() == ns::server ||
                f->ns() == ns::private_xml) {
                e.reply_error("not-acceptable", "reserved namespace");
                return std::nullopt;
            }
        }
        return list;
    }

    Flow handle(StanzaEvent& e, bool is_set) {
        // XEP-0049 §2.3: nobody reads or writes another entity's private data.
        if (e.to.bare() != e.from.bare()) {
            e.reply_error("forbidden");
            return Flow::Stop;
        }
        auto list = fragments(e);
        if (!list) {
            return Flow::Stop;
        }
        const auto& user = e.from.local();
        auto& kv = server_.kv();
        if (!is_set) {
            auto result = make_result(e.stanza);
            auto& query = result.add(Element("query", std::string(ns::private_xml)));
            for (const auto* f : *list) {
                std::optional<Element> data;
                if (auto stored = kv.get(user, store, key_of(*f))) {
                    data = xml::parse_fragment(*stored);
                }
                // Nothing stored: the empty element asked for (XEP-0049 example 2 shape).
                query.add(data ? std::move(*data) : Element(f->name(), f->ns()));
            }
            e.reply(std::move(result));
            return Flow::Stop;
        }
        // Check the whole request before writing any of it.
        std::vector<std::pair<std::string, std::string>> writes;
        for (const auto* f : *list) {
            auto text = xml::serialize(*f);
            if (text.size() > max_bytes_) {
                e.reply_error("policy-violation", "a fragment is larger than " +
                                                      std::to_string(max_bytes_) + " bytes");
                return Flow::Stop;
            }
            // An element without content or attributes stores nothing: keep no row.
            bool empty = f->nodes().empty() && f->attrs().empty();
            writes.emplace_back(key_of(*f), empty ? std::string() : std::move(text));
        }
        auto existing = kv.list_keys(user, store);
        std::size_t count = existing.size();
        for (const auto& [k, v] : writes) {
            bool had = std::find(existing.begin(), existing.end(), k) != existing.end();
            if (!v.empty() && !had) {
                ++count;
                existing.push_back(k);
            }
        }
        if (count > max_items_) {
            e.reply_error("policy-violation", "too many private XML fragments");
            return Flow::Stop;
        }
        // max_items x max_bytes would allow 6 MB per user: the total has a quota of its own
        // (issue 10 §2). Sizes as stored (sealed when the server encrypts at rest).
        std::size_t total = 0;
        for (const auto& stored : kv.value_sizes(user, store)) {
            bool replaced = std::any_of(writes.begin(), writes.end(),
                                        [&](const auto& w) { return w.first == stored.first; });
            total += replaced ? 0 : stored.second;
        }
        for (const auto& [k, v] : writes) {
            total += v.size();
        }
        if (total > quota_bytes_) {
            e.reply_error("not-acceptable", "private XML storage would exceed its quota of " +
                                                std::to_string(quota_bytes_) + " bytes");
            return Flow::Stop;
        }
        for (const auto& [k, v] : writes) {
            if (v.empty()) {
                kv.remove(user, store, k);
            } else {
                kv.put(user, store, k, v);
            }
        }
        e.reply(make_result(e.stanza));
        return Flow::Stop;
    }

    Server& server_;
    std::size_t max_bytes_;
    std::size_t max_items_;
    std::size_t quota_bytes_;
};

std::unique_ptr<PrivateStorage> load(ModuleContext& m) {
    return std::make_unique<PrivateStorage>(m);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(private, haven::xeps::load)
