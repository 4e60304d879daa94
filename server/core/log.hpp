// Logger: leveled lines to stderr. Callers log a stanza's top tag only, never bodies or passwords.
#pragma once

#include <sstream>
#include <string_view>

namespace haven {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

class Logger {
public:
    explicit Logger(LogLevel level = LogLevel::Info, bool log_addresses = false)
        : level_(level), log_addresses_(log_addresses) {}

    void set_level(LogLevel level) { level_ = level; }
    bool enabled(LogLevel level) const { return level >= level_; }
    // Whether the admin allowed IP addresses in logs ([log] addresses); off by default because
    // a help seeker's address is sensitive.
    bool log_addresses() const { return log_addresses_; }
    void set_log_addresses(bool on) { log_addresses_ = on; }

    template <class... Args>
    void debug(const Args&... args) const { write(LogLevel::Debug, args...); }
    template <class... Args>
    void info(const Args&... args) const { write(LogLevel::Info, args...); }
    template <class... Args>
    void warn(const Args&... args) const { write(LogLevel::Warn, args...); }
    template <class... Args>
    void error(const Args&... args) const { write(LogLevel::Error, args...); }

    static LogLevel parse_level(std::string_view s);

private:
    template <class... Args>
    void write(LogLevel level, const Args&... args) const {
        if (!enabled(level)) {
            return;
        }
        std::ostringstream line;
        (line << ... << args);
        emit(level, line.str());
    }
    void emit(LogLevel level, const std::string& line) const;

    LogLevel level_;
    bool log_addresses_;
};

}  // namespace haven
