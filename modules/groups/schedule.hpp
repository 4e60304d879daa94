// Group meeting times: one-off and repeating meetings in an IANA time zone, resolved with ICU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace haven::groups {

enum class Repeat { None, Weekly, Biweekly };
// "none" (or "once"), "weekly", "biweekly"; anything else is nullopt.
std::optional<Repeat> parse_repeat(std::string_view text);
// The name parse_repeat() reads back: "none", "weekly", "biweekly".
std::string_view repeat_name(Repeat repeat);

// A wall-clock time in the meeting's zone (month 1-12, day 1-31, hour 0-23).
struct LocalDateTime {
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
};

// "2026-12-08T18:00" or "2026-12-08 18:00", a real calendar date, years 1970 to 9999.
std::optional<LocalDateTime> parse_local_datetime(std::string_view text);
// Back to "2026-12-08T18:00".
std::string format_local_datetime(const LocalDateTime& t);

// A zone in ICU's copy of the IANA database ("Europe/Berlin", also links like "US/Eastern"),
// not a typo that ICU would quietly turn into "Etc/Unknown", nor a custom "GMT+05:00".
bool valid_time_zone(std::string_view tz);

struct MeetingTime {
    LocalDateTime start;
    std::string time_zone;
    int duration_minutes = 60;
    Repeat repeat = Repeat::None;
};

// One occurrence of a meeting, in unix seconds (UTC); end = start + the duration.
struct Occurrence {
    std::int64_t start = 0;
    std::int64_t end = 0;
};

// Repeating meetings keep their local wall-clock time, so a weekly 18:00 Berlin meeting is at
// 17:00 UTC in winter and 16:00 UTC in summer. A local time that does not exist (inside the
// spring-forward gap) moves forward by the gap, as ICU's lenient calendar does: 02:30 on the
// night Berlin skips 02:00-03:00 is 03:30 CEST. A local time that exists twice (fall back) is
// the first of the two, so the meeting does not start an hour late.

// The occurrence running at `now` (start <= now < end), else the next one to start; nullopt
// when a one-off meeting is over, the zone is not valid_time_zone(), or now is past year 9999.
// Constant time however far back the meeting started.
std::optional<Occurrence> current_or_next(const MeetingTime& m, std::int64_t now);
// The first occurrence starting at or after `after` (to list the next dates:
// next_after(m, previous.start + 1)); nullopt in the same cases as current_or_next().
std::optional<Occurrence> next_after(const MeetingTime& m, std::int64_t after);

// "Dienstag, 8. Dezember 2026, 18:00" / "Tuesday, December 8, 2026, 6:00 PM": ICU's full date
// and short time in the zone tz, German for "de" and any "de-*" language tag, else English.
// An invalid zone formats in UTC and says so (" UTC"); the config rejects such zones anyway.
std::string format_for_people(std::int64_t unix_seconds, std::string_view tz,
                              std::string_view lang);

}  // namespace haven::groups
