// Config: one TOML file; every option is declared once (name, type, default, bounds, doc).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace toml {
inline namespace v3 {
class node;
class table;
}  // namespace v3
}  // namespace toml

namespace haven::config {

using Value = std::variant<bool, std::int64_t, std::string, std::vector<std::string>>;

enum class Type { Bool, Int, String, StringList, Table };

// Thrown at the config boundary; what() is one line naming the offending key.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct OptionSpec {
    std::string section;  // empty: a top-level array of tables ([[key]], Type::Table only)
    std::string key;
    Type type = Type::String;
    Value default_value;
    std::string doc;
    std::int64_t min = std::numeric_limits<std::int64_t>::min();
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::vector<std::string> choices;  // allowed strings / list entries, empty = any
    // For Type::Table options (structured module config): returns an error message or nothing.
    std::function<std::optional<std::string>(const toml::node&)> validate;
};

OptionSpec opt_bool(std::string section, std::string key, bool def, std::string doc);
OptionSpec opt_int(std::string section, std::string key, std::int64_t def, std::int64_t min,
                   std::int64_t max, std::string doc);
OptionSpec opt_string(std::string section, std::string key, std::string def, std::string doc,
                      std::vector<std::string> choices = {});
OptionSpec opt_list(std::string section, std::string key, std::vector<std::string> def,
                    std::string doc, std::vector<std::string> choices = {});

class Config {
public:
    // Parses and validates against the declared options; unknown keys are errors so a typo
    // never silently falls back to a default. Throws ConfigError.
    static Config load_file(const std::filesystem::path& path, std::vector<OptionSpec> specs);
    static Config load_string(std::string_view text, std::vector<OptionSpec> specs);

    Config(Config&&) noexcept;
    Config& operator=(Config&&) noexcept;
    ~Config();

    bool get_bool(std::string_view section, std::string_view key) const;
    std::int64_t get_int(std::string_view section, std::string_view key) const;
    const std::string& get_string(std::string_view section, std::string_view key) const;
    const std::vector<std::string>& get_list(std::string_view section, std::string_view key) const;
    // Structured (Type::Table) options; nullptr when absent.
    const toml::node* get_node(std::string_view section, std::string_view key) const;
    bool is_set(std::string_view section, std::string_view key) const;

    const std::vector<OptionSpec>& specs() const { return specs_; }

private:
    Config();
    void apply(const toml::table& root);

    std::vector<OptionSpec> specs_;
    std::map<std::string, Value, std::less<>> values_;  // "section.key" → value
    std::map<std::string, bool, std::less<>> explicit_;
    std::unique_ptr<toml::table> root_;
};

// Renders an example config documenting every declared option with its default.
std::string render_example(const std::vector<OptionSpec>& specs);

}  // namespace haven::config
