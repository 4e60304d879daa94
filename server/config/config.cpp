// Config: TOML loading through toml++, validation against declared options.
#include "server/config/config.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace haven::config {
namespace {

std::string full_key(std::string_view section, std::string_view key) {
    std::string k(section);
    k += '.';
    k += key;
    return k;
}

std::string where(const OptionSpec& s) {
    return s.section.empty() ? "[[" + s.key + "]]" : "[" + s.section + "] " + s.key;
}

Value convert(const OptionSpec& s, const toml::node& n) {
    switch (s.type) {
        case Type::Bool:
            if (auto v = n.value<bool>(); v && n.is_boolean()) {
                return *v;
            }
            throw ConfigError(where(s) + ": expected true or false");
        case Type::Int: {
            if (!n.is_integer()) {
                throw ConfigError(where(s) + ": expected an integer");
            }
            auto v = *n.value<std::int64_t>();
            if (v < s.min || v > s.max) {
                throw ConfigError(where(s) + ": must be between " + std::to_string(s.min) +
                                  " and " + std::to_string(s.max));
            }
            return v;
        }
        case Type::String: {
            if (!n.is_string()) {
                throw ConfigError(where(s) + ": expected a string");
            }
            auto v = *n.value<std::string>();
            if (!s.choices.empty() &&
                std::find(s.choices.begin(), s.choices.end(), v) == s.choices.end()) {
                throw ConfigError(where(s) + ": '" + v + "' is not one of the allowed values");
            }
            return v;
        }
        case Type::StringList: {
            const auto* arr = n.as_array();
            if (!arr) {
                throw ConfigError(where(s) + ": expected a list of strings");
            }
            std::vector<std::string> out;
            for (const auto& item : *arr) {
                if (!item.is_string()) {
                    throw ConfigError(where(s) + ": expected a list of strings");
                }
                auto v = *item.value<std::string>();
                if (!s.choices.empty() &&
                    std::find(s.choices.begin(), s.choices.end(), v) == s.choices.end()) {
                    throw ConfigError(where(s) + ": '" + v + "' is not one of the allowed values");
                }
                out.push_back(std::move(v));
            }
            return out;
        }
        case Type::Table:
            break;
    }
    return false;
}

}  // namespace

OptionSpec opt_bool(std::string section, std::string key, bool def, std::string doc) {
    return OptionSpec{std::move(section), std::move(key), Type::Bool, def, std::move(doc)};
}

OptionSpec opt_int(std::string section, std::string key, std::int64_t def, std::int64_t min,
                   std::int64_t max, std::string doc) {
    OptionSpec s{std::move(section), std::move(key), Type::Int, def, std::move(doc)};
    s.min = min;
    s.max = max;
    return s;
}

OptionSpec opt_string(std::string section, std::string key, std::string def, std::string doc,
                      std::vector<std::string> choices) {
    OptionSpec s{std::move(section), std::move(key), Type::String, std::move(def), std::move(doc)};
    s.choices = std::move(choices);
    return s;
}

OptionSpec opt_list(std::string section, std::string key, std::vector<std::string> def,
                    std::string doc, std::vector<std::string> choices) {
    OptionSpec s{std::move(section), std::move(key), Type::StringList, std::move(def),
                 std::move(doc)};
    s.choices = std::move(choices);
    return s;
}

Config::Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
Config::~Config() = default;

Config Config::load_file(const std::filesystem::path& path, std::vector<OptionSpec> specs) {
    Config c;
    c.specs_ = std::move(specs);
    try {
        auto root = toml::parse_file(path.string());
        c.apply(root);
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << path.string() << ":" << e.source().begin.line << ": " << e.description();
        throw ConfigError(msg.str());
    }
    return c;
}

Config Config::load_string(std::string_view text, std::vector<OptionSpec> specs) {
    Config c;
    c.specs_ = std::move(specs);
    try {
        auto root = toml::parse(text);
        c.apply(root);
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << "line " << e.source().begin.line << ": " << e.description();
        throw ConfigError(msg.str());
    }
    return c;
}

void Config::apply(const toml::table& root) {
    std::set<std::string, std::less<>> sections;
    for (const auto& s : specs_) {
        sections.insert(s.section);
        values_[full_key(s.section, s.key)] = s.default_value;
    }
    for (const auto& [sec_name, sec_node] : root) {
        std::string sec(sec_name.str());
        // A top-level array of tables ([[groups]]): a Type::Table option with no section.
        if (auto it = std::find_if(specs_.begin(), specs_.end(),
                                   [&](const OptionSpec& s) {
                                       return s.section.empty() && s.key == sec;
                                   });
            it != specs_.end()) {
            explicit_[full_key({}, sec)] = true;
            if (it->validate) {
                if (auto err = it->validate(sec_node)) {
                    throw ConfigError(where(*it) + ": " + *err);
                }
            }
            continue;
        }
        if (!sections.contains(sec)) {
            throw ConfigError("[" + sec + "]: unknown section");
        }
        const auto* table = sec_node.as_table();
        if (!table) {
            throw ConfigError("[" + sec + "]: expected a table");
        }
        for (const auto& [key_name, node] : *table) {
            std::string key(key_name.str());
            auto it = std::find_if(specs_.begin(), specs_.end(), [&](const OptionSpec& s) {
                return s.section == sec && s.key == key;
            });
            if (it == specs_.end()) {
                throw ConfigError("[" + sec + "] " + key + ": unknown option");
            }
            explicit_[full_key(sec, key)] = true;
            if (it->type == Type::Table) {
                if (it->validate) {
                    if (auto err = it->validate(node)) {
                        throw ConfigError(where(*it) + ": " + *err);
                    }
                }
                continue;
            }
            values_[full_key(sec, key)] = convert(*it, node);
        }
    }
    root_ = std::make_unique<toml::table>(root);
}

namespace {
template <class T>
const T& lookup(const std::map<std::string, Value, std::less<>>& values, std::string_view section,
                std::string_view key) {
    auto it = values.find(full_key(section, key));
    if (it == values.end() || !std::holds_alternative<T>(it->second)) {
        // A programming error: the option was never declared with this type.
        throw ConfigError("[" + std::string(section) + "] " + std::string(key) +
                          ": option not declared");
    }
    return std::get<T>(it->second);
}
}  // namespace

bool Config::get_bool(std::string_view section, std::string_view key) const {
    return lookup<bool>(values_, section, key);
}
std::int64_t Config::get_int(std::string_view section, std::string_view key) const {
    return lookup<std::int64_t>(values_, section, key);
}
const std::string& Config::get_string(std::string_view section, std::string_view key) const {
    return lookup<std::string>(values_, section, key);
}
const std::vector<std::string>& Config::get_list(std::string_view section,
                                                 std::string_view key) const {
    return lookup<std::vector<std::string>>(values_, section, key);
}

const toml::node* Config::get_node(std::string_view section, std::string_view key) const {
    if (!root_) {
        return nullptr;
    }
    if (section.empty()) {
        return root_->get(key);  // a top-level array of tables
    }
    const auto* sec = root_->get(section);
    if (!sec || !sec->is_table()) {
        return nullptr;
    }
    return sec->as_table()->get(key);
}

bool Config::is_set(std::string_view section, std::string_view key) const {
    return explicit_.contains(full_key(section, key));
}

std::string render_example(const std::vector<OptionSpec>& specs) {
    std::ostringstream out;
    out << "# Haven configuration: every option with its default value.\n"
           "# Generated by `havend --print-example-config`; uncomment what you change.\n"
           "# Relative paths are relative to havend's working directory.\n";
    for (const auto& s : specs) {
        if (s.section.empty()) {
            out << "\n# " << s.doc << "\n# [[" << s.key
                << "]] tables (structured; see the module's README)\n";
        }
    }
    std::string current;
    for (const auto& s : specs) {
        if (s.section.empty()) {
            // Top-level arrays of tables come first: TOML has no way back to the top level
            // once a [section] began.
            continue;
        }
        if (s.section != current) {
            out << "\n[" << s.section << "]\n";
            current = s.section;
        }
        out << "# " << s.doc;
        if (s.type == Type::Int && (s.min != std::numeric_limits<std::int64_t>::min() ||
                                    s.max != std::numeric_limits<std::int64_t>::max())) {
            out << " (" << s.min << " to " << s.max << ")";
        }
        if (!s.choices.empty() && s.type == Type::String) {
            out << " One of:";
            for (const auto& c : s.choices) {
                out << " " << c;
            }
            out << ".";
        }
        out << "\n";
        if (s.type == Type::Table) {
            out << "# (structured; see the module's README)\n";
            continue;
        }
        std::ostringstream val;
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, bool>) {
                    val << (v ? "true" : "false");
                } else if constexpr (std::is_same_v<T, std::int64_t>) {
                    val << v;
                } else if constexpr (std::is_same_v<T, std::string>) {
                    val << '"' << v << '"';
                } else {
                    val << "[";
                    for (std::size_t i = 0; i < v.size(); ++i) {
                        val << (i ? ", " : "") << '"' << v[i] << '"';
                    }
                    val << "]";
                }
            },
            s.default_value);
        out << "#" << s.key << " = " << val.str() << "\n";
    }
    return out.str();
}

}  // namespace haven::config
