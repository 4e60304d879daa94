// Texts: server-generated human-readable strings (refusals, notices) in English and German,
// overridable in the config ([texts.en] / [texts.de]) and chosen by the stanza's xml:lang.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace haven {

class Texts {
public:
    Texts();
    // Adds or overrides a text. `lang` is a primary language tag ("en", "de").
    void set(std::string_view lang, std::string_view key, std::string value);
    // The built-in English and German text of `key` (the config's [texts] override them).
    void set_en_de(std::string_view key, std::string en, std::string de) {
        set("en", key, std::move(en));
        set("de", key, std::move(de));
    }
    // The text in the best language for `lang` (e.g. "de-AT" → "de"), falling back to English.
    const std::string& get(std::string_view key, std::string_view lang) const;
    // The language get() would pick ("de" or "en"); for xml:lang on the text element.
    std::string pick_lang(std::string_view key, std::string_view lang) const;

private:
    std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> by_lang_;
};

// "{staff} took it" with each {placeholder} replaced (every occurrence; values are not
// searched again, so a value containing "{staff}" stays as it is).
std::string fill(std::string text,
                 std::initializer_list<std::pair<std::string_view, std::string_view>> vars);

}  // namespace haven
