// Logger: leveled lines to stderr with a UTC timestamp.
#include "server/core/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace haven {

LogLevel Logger::parse_level(std::string_view s) {
    if (s == "debug") {
        return LogLevel::Debug;
    }
    if (s == "warn") {
        return LogLevel::Warn;
    }
    if (s == "error") {
        return LogLevel::Error;
    }
    return LogLevel::Info;
}

void Logger::emit(LogLevel level, const std::string& line) const {
    static constexpr const char* names[] = {"debug", "info", "warn", "error"};
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s %-5s %s\n", ts, names[static_cast<int>(level)], line.c_str());
}

}  // namespace haven
