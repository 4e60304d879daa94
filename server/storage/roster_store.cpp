// RosterStore: RFC 6121 roster items and subscription state, with a XEP-0237 version per user.
#include "server/storage/roster_store.hpp"

#include <chrono>

namespace haven::storage {
namespace {

// Reads the columns: contact, name, subscription, ask_out, ask_in, pending_subscribe.
RosterItem read_item(const Statement& st) {
    RosterItem item;
    item.contact = st.column_text(0);
    item.name = st.column_text(1);
    item.subscription = st.column_text(2);
    item.ask_out = st.column_int64(3) != 0;
    item.ask_in = st.column_int64(4) != 0;
    item.pending_subscribe = st.column_text(5);
    return item;
}

}  // namespace

std::vector<RosterItem> RosterStore::get_all(std::string_view user) const {
    std::vector<RosterItem> items;
    {
        auto& st = db_.prepare_cached(
            "SELECT contact, name, subscription, ask_out, ask_in, pending_subscribe"
            " FROM roster WHERE user = ?1 ORDER BY contact");
        ScopedReset guard(st);
        st.bind(1, user);
        while (st.step()) {
            items.push_back(read_item(st));
        }
    }
    // Both queries are ordered by contact (same BINARY collation), so one merge pass attaches
    // the groups: two statements per roster, whatever its size.
    auto& st = db_.prepare_cached(
        "SELECT contact, grp FROM roster_groups WHERE user = ?1 ORDER BY contact, grp");
    ScopedReset guard(st);
    st.bind(1, user);
    auto it = items.begin();
    while (st.step()) {
        const std::string contact = st.column_text(0);
        while (it != items.end() && it->contact < contact) {
            ++it;
        }
        if (it != items.end() && it->contact == contact) {
            it->groups.push_back(st.column_text(1));
        }
    }
    return items;
}

std::optional<RosterItem> RosterStore::get(std::string_view user, std::string_view contact) const {
    std::optional<RosterItem> item;
    {
        auto& st = db_.prepare_cached(
            "SELECT contact, name, subscription, ask_out, ask_in, pending_subscribe"
            " FROM roster WHERE user = ?1 AND contact = ?2");
        ScopedReset guard(st);
        st.bind(1, user).bind(2, contact);
        if (!st.step()) {
            return std::nullopt;
        }
        item = read_item(st);
    }
    auto& st = db_.prepare_cached(
        "SELECT grp FROM roster_groups WHERE user = ?1 AND contact = ?2 ORDER BY grp");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, contact);
    while (st.step()) {
        item->groups.push_back(st.column_text(0));
    }
    return item;
}

std::int64_t RosterStore::put(std::string_view user, const RosterItem& item) {
    Transaction tx(db_);
    {
        auto& st = db_.prepare_cached(
            "INSERT INTO roster(user, contact, name, subscription, ask_out, ask_in,"
            " pending_subscribe) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            " ON CONFLICT(user, contact) DO UPDATE SET name = excluded.name,"
            " subscription = excluded.subscription, ask_out = excluded.ask_out,"
            " ask_in = excluded.ask_in, pending_subscribe = excluded.pending_subscribe");
        ScopedReset guard(st);
        st.bind(1, user)
            .bind(2, item.contact)
            .bind(3, item.name)
            .bind(4, item.subscription)
            .bind(5, std::int64_t{item.ask_out})
            .bind(6, std::int64_t{item.ask_in})
            .bind(7, item.pending_subscribe);
        st.step();
    }
    {
        auto& st = db_.prepare_cached("DELETE FROM roster_groups WHERE user = ?1 AND contact = ?2");
        ScopedReset guard(st);
        st.bind(1, user).bind(2, item.contact);
        st.step();
    }
    auto& st = db_.prepare_cached(
        "INSERT OR IGNORE INTO roster_groups(user, contact, grp) VALUES(?1, ?2, ?3)");
    for (const auto& group : item.groups) {
        ScopedReset guard(st);
        st.bind(1, user).bind(2, item.contact).bind(3, group);
        st.step();
    }
    const std::int64_t version = bump_version(user);
    tx.commit();
    return version;
}

std::int64_t RosterStore::remove(std::string_view user, std::string_view contact) {
    Transaction tx(db_);
    {
        // Groups go with the item through their ON DELETE CASCADE.
        auto& st = db_.prepare_cached("DELETE FROM roster WHERE user = ?1 AND contact = ?2");
        ScopedReset guard(st);
        st.bind(1, user).bind(2, contact);
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
