// Texts: localised server-generated strings with config overrides.
#include "server/core/texts.hpp"

#include <cctype>

namespace haven {
namespace {
std::string primary_tag(std::string_view lang) {
    std::string out;
    for (char c : lang) {
        if (c == '-' || c == '_') {
            break;
        }
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
}
}  // namespace

Texts::Texts() {
    set("en", "offline-quota", "The recipient's offline storage is full.");
    set("de", "offline-quota", "Der Offline-Speicher des Empfängers ist voll.");
    set("en", "storage-busy", "The server's storage is busy; try again in a moment.");
    set("de", "storage-busy",
        "Der Speicher des Servers ist ausgelastet; bitte gleich erneut versuchen.");
    set("en", "store-quota", "This would exceed your storage quota.");
    set("de", "store-quota", "Das würde Ihr Speicherkontingent überschreiten.");
    set("en", "stanza-too-large", "The stanza is too large to be stored.");
    set("de", "stanza-too-large", "Die Nachricht ist zu groß, um gespeichert zu werden.");
    set("en", "login-throttled", "Too many failed login attempts; try again later.");
    set("de", "login-throttled", "Zu viele fehlgeschlagene Anmeldeversuche; bitte später erneut versuchen.");
}

void Texts::set(std::string_view lang, std::string_view key, std::string value) {
    by_lang_[primary_tag(lang)][std::string(key)] = std::move(value);
}

std::string Texts::pick_lang(std::string_view key, std::string_view lang) const {
    auto tag = primary_tag(lang);
    if (auto it = by_lang_.find(tag); it != by_lang_.end() && it->second.contains(key)) {
        return tag;
    }
    return "en";
}

const std::string& Texts::get(std::string_view key, std::string_view lang) const {
    static const std::string empty;
    auto l = pick_lang(key, lang);
    auto it = by_lang_.find(l);
    if (it == by_lang_.end()) {
        return empty;
    }
    auto t = it->second.find(key);
    return t == it->second.end() ? empty : t->second;
}

std::string fill(std::string text,
                 std::initializer_list<std::pair<std::string_view, std::string_view>> vars) {
    for (const auto& [key, value] : vars) {
        for (auto pos = text.find(key); pos != std::string::npos;
             pos = text.find(key, pos + value.size())) {
            text.replace(pos, key.size(), value);
        }
    }
    return text;
}

}  // namespace haven
