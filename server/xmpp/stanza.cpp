// Stanza helpers: kinds, types, results and errors per RFC 6120 §8.
#include "server/xmpp/stanza.hpp"

#include <charconv>
#include <ctime>
#include <utility>

#include "server/xmpp/namespaces.hpp"

namespace haven {

StanzaKind kind_of(const Element& stanza) {
    const auto& n = stanza.name();
    if (n == "message") {
        return StanzaKind::Message;
    }
    if (n == "presence") {
        return StanzaKind::Presence;
    }
    if (n == "iq") {
        return StanzaKind::Iq;
    }
    return StanzaKind::Other;
}

std::string_view kind_name(StanzaKind kind) {
    switch (kind) {
        case StanzaKind::Message: return "message";
        case StanzaKind::Presence: return "presence";
        case StanzaKind::Iq: return "iq";
        case StanzaKind::Other: break;
    }
    return "other";
}

std::string_view default_error_type(std::string_view c) {
    if (c == "bad-request" || c == "jid-malformed" || c == "not-acceptable" ||
        c == "policy-violation" || c == "redirect" || c == "gone") {
        return "modify";
    }
    if (c == "forbidden" || c == "not-authorized" || c == "registration-required") {
        return "auth";
    }
    if (c == "resource-constraint" || c == "recipient-unavailable" ||
        c == "remote-server-timeout" || c == "unexpected-request") {
        return "wait";
    }
    return "cancel";
}

bool is_error_or_result(const Element& stanza) {
    auto type = stanza.attr("type");
    return type == "error" || (stanza.name() == "iq" && type == "result");
}

Element make_error(const Element& stanza, std::string_view condition, std::string_view text,
                   std::string_view lang, std::string_view type) {
    Element reply(stanza.name(), stanza.ns());
    if (auto to = stanza.attr("from"); !to.empty()) {
        reply.attr("to", std::string(to));
    }
    if (auto from = stanza.attr("to"); !from.empty()) {
        reply.attr("from", std::string(from));
    }
    if (auto id = stanza.attr("id"); !id.empty()) {
        reply.attr("id", std::string(id));
    }
    reply.attr("type", "error");
    Element error("error", stanza.ns());
    error.attr("type", std::string(type.empty() ? default_error_type(condition) : type));
    error.add(Element(std::string(condition), std::string(ns::stanza_errors)));
    if (!text.empty()) {
        Element t("text", std::string(ns::stanza_errors));
        if (!lang.empty()) {
            t.attr("xml:lang", std::string(lang));
        }
        t.text(text);
        error.add(std::move(t));
    }
    reply.add(std::move(error));
    return reply;
}

Element make_result(const Element& iq) {
    Element reply("iq", iq.ns());
    if (auto to = iq.attr("from"); !to.empty()) {
        reply.attr("to", std::string(to));
    }
    if (auto from = iq.attr("to"); !from.empty()) {
        reply.attr("from", std::string(from));
    }
    reply.attr("id", std::string(iq.attr("id")));
    reply.attr("type", "result");
    return reply;
}

Element make_stream_error(std::string_view condition, std::string_view text) {
    Element error("error", std::string(ns::streams));
    error.add(Element(std::string(condition), std::string(ns::stream_errors)));
    if (!text.empty()) {
        Element t("text", std::string(ns::stream_errors));
        t.text(text);
        error.add(std::move(t));
    }
    return error;
}

std::string xep82_datetime(long long unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<long long> parse_xep82_datetime(std::string_view s) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':') {
        return std::nullopt;
    }
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
        return ec == std::errc{} && p == s.data() + pos + len;
    };
    if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
        !num(17, 2, sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            ++pos;
        }
    }
    long long offset = 0;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size()) {
        int oh = 0, om = 0;
        if (!num(pos + 1, 2, oh) || s[pos + 3] != ':' || !num(pos + 4, 2, om)) {
            return std::nullopt;
        }
        offset = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    } else if (pos + 1 != s.size() || s[pos] != 'Z') {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return static_cast<long long>(timegm(&tm)) - offset;
}

}  // namespace haven
