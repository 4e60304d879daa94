// RosterStore: RFC 6121 roster items and subscription state, with a XEP-0237 version per user.
#include "server/storage/roster_store.hpp"

#include <algorithm>
#include <chrono>

namespace haven::storage {
namespace {

// The sealed record: contact, name, subscription, ask_out, ask_in, pending_subscribe, then the
// groups. Everything but the owner stays inside it (issue 11: no social graph in the clear).
std::string encode(const RosterItem& item) {
    std::string out = pack({item.contact, item.name, item.subscription, item.ask_out ? "1" : "",
                            item.ask_in ? "1" : "", item.pending_subscribe});
    for (const auto& g : item.groups) {
        pack_append(out, g);
    }
    return out;
}

std::optional<RosterItem> decode(std::string_view record) {
    auto parts = unpack(record);
    if (!parts || parts->size() < 6) {
        return std::nullopt;
    }
    auto& p = *parts;
    RosterItem item;
    item.contact = std::move(p[0]);
    item.name = std::move(p[1]);
    item.subscription = std::move(p[2]);
    item.ask_out = !p[3].empty();
    item.ask_in = !p[4].empty();
    item.pending_subscribe = std::move(p[5]);
    item.groups.assign(std::make_move_iterator(p.begin() + 6), std::make_move_iterator(p.end()));
    std::sort(item.groups.begin(), item.groups.end());
    item.groups.erase(std::unique(item.groups.begin(), item.groups.end()), item.groups.end());
    return item;
}

}  // namespace

std::string RosterStore::contact_hash(std::string_view user, std::string_view contact) const {
    return box_.lookup(pack({"roster", user, contact}));
}

RosterItem RosterStore::open_item(std::string_view user, std::string_view contact_h,
                                  std::string_view sealed) const {
    auto record = box_.open(sealed, pack({"roster", user, contact_h}));
    auto item = record ? decode(*record) : std::nullopt;
    if (!item) {
        throw StorageError("storage: a roster item does not decrypt: wrong key file?");
    }
    return std::move(*item);
}

std::vector<RosterItem> RosterStore::get_all(std::string_view user) const {
    std::vector<RosterItem> items;
    auto& st = db_.prepare_cached("SELECT contact_h, item FROM roster WHERE user = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    while (st.step()) {
        items.push_back(open_item(user, st.column_blob(0), st.column_blob(1)));
    }
    // The hashes say nothing about order: sort by contact, as callers (and clients) expect.
    std::sort(items.begin(), items.end(),
              [](const RosterItem& a, const RosterItem& b) { return a.contact < b.contact; });
    return items;
}

std::optional<RosterItem> RosterStore::get(std::string_view user, std::string_view contact) const {
    const std::string h = contact_hash(user, contact);
    auto& st = db_.prepare_cached("SELECT item FROM roster WHERE user = ?1 AND contact_h = ?2");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, Blob{h});
    if (!st.step()) {
        return std::nullopt;
    }
    return open_item(user, h, st.column_blob(0));
}

std::size_t RosterStore::count(std::string_view user) const {
    auto& st = db_.prepare_cached("SELECT count(*) FROM roster WHERE user = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

std::int64_t RosterStore::put(std::string_view user, const RosterItem& item) {
    // Inside the seal no CHECK constraint can guard the state: refuse nonsense here.
    if (item.subscription != "none" && item.subscription != "to" && item.subscription != "from" &&
        item.subscription != "both") {
        throw StorageError("storage: invalid roster subscription '" + item.subscription + "'");
    }
    const std::string h = contact_hash(user, item.contact);
    const std::string sealed = box_.seal(encode(item), pack({"roster", user, h}));
    Transaction tx(db_);
    {
        auto& st = db_.prepare_cached(
            "INSERT INTO roster(user, contact_h, item) VALUES(?1, ?2, ?3)"
            " ON CONFLICT(user, contact_h) DO UPDATE SET item = excluded.item");
        ScopedReset guard(st);
        st.bind(1, user).bind(2, Blob{h}).bind(3, Blob{sealed});
        st.step();
    }
    const std::int64_t version = bump_version(user);
    tx.commit();
    return version;
}

std::int64_t RosterStore::remove(std::string_view user, std::string_view contact) {
    Transaction tx(db_);
    {
        auto& st = db_.prepare_cached("DELETE FROM roster WHERE user = ?1 AND contact_h = ?2");
        ScopedReset guard(st);
        st.bind(1, user).bind(2, Blob{contact_hash(user, contact)});
        st.step();
    }
    if (db_.changes() == 0) {
        return 0;
    }
    const std::int64_t version = bump_version(user);
    tx.commit();
    return version;
}

std::int64_t RosterStore::get_version(std::string_view user) const {
    auto& st = db_.prepare_cached("SELECT version FROM roster_version WHERE user = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    return st.step() ? st.column_int64(0) : 0;
}

// A fresh counter starts at the current time in milliseconds rather than 1: if an account is
// deleted and re-created, its new versions then exceed any the old account's clients cached,
// so XEP-0237 never answers "unchanged" for a roster that is in fact different.
std::int64_t RosterStore::bump_version(std::string_view user) {
    const auto seed = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    auto& st = db_.prepare_cached(
        "INSERT INTO roster_version(user, version) VALUES(?1, ?2)"
        " ON CONFLICT(user) DO UPDATE SET version = version + 1 RETURNING version");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, static_cast<std::int64_t>(seed));
    st.step();
    return st.column_int64(0);
}

}  // namespace haven::storage
