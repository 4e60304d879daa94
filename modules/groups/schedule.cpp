// Group meeting times, resolved and formatted with ICU's calendars and time-zone data.
#include "modules/groups/schedule.hpp"

#include <unicode/calendar.h>
#include <unicode/datefmt.h>
#include <unicode/gregocal.h>
#include <unicode/locid.h>
#include <unicode/timezone.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>

namespace haven::groups {

namespace {

constexpr int kMinYear = 1970;
constexpr int kMaxYear = 9999;
constexpr std::int64_t kDay = 24 * 60 * 60;
// 9999-12-31T23:59:59Z. A schedule has no use for later times, and bounding them keeps the
// period arithmetic below far from overflowing (at most ~520,000 weeks from 1970).
constexpr std::int64_t kLastSecond = 253402300799;

bool is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

bool valid_fields(const LocalDateTime& t) {
    return t.year >= kMinYear && t.year <= kMaxYear && t.month >= 1 && t.month <= 12 &&
           t.day >= 1 && t.day <= days_in_month(t.year, t.month) && t.hour >= 0 && t.hour <= 23 &&
           t.minute >= 0 && t.minute <= 59;
}

// Exactly n ASCII digits at pos (std::isdigit would depend on the C locale).
bool read_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

icu::UnicodeString to_unicode(std::string_view s) {
    return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

std::string to_utf8(const icu::UnicodeString& s) {
    std::string out;
    s.toUTF8String(out);
    return out;
}

std::unique_ptr<icu::TimeZone> make_zone(std::string_view tz) {
    if (!valid_time_zone(tz)) {
        return nullptr;
    }
    return std::unique_ptr<icu::TimeZone>(icu::TimeZone::createTimeZone(to_unicode(tz)));
}

// A lenient Gregorian calendar in the meeting's zone: it turns wall-clock fields into UTC and
// normalises a day-of-month past the month's end, which is how occurrences are found.
std::unique_ptr<icu::Calendar> make_calendar(std::string_view tz) {
    auto zone = make_zone(tz);
    if (!zone) {
        return nullptr;
    }
    UErrorCode status = U_ZERO_ERROR;
    // The root locale: the calendar only converts fields, so week conventions do not matter.
    auto cal =
        std::make_unique<icu::GregorianCalendar>(zone.release(), icu::Locale::getRoot(), status);
    if (U_FAILURE(status)) {
        return nullptr;
    }
    cal->setLenient(true);
    // Set explicitly rather than relying on ICU's defaults, since the header documents them:
    // a skipped time is read with the offset before the gap (02:30 -> 03:30 summer time), a
    // repeated time is the first of the two.
    cal->setSkippedWallTimeOption(UCAL_WALLTIME_LAST);
    cal->setRepeatedWallTimeOption(UCAL_WALLTIME_FIRST);
    return cal;
}

// The start of the occurrence `day_offset` days after the first, at the same wall-clock time.
std::optional<std::int64_t> start_at(icu::Calendar& cal, const LocalDateTime& t,
                                     std::int64_t day_offset) {
    const std::int64_t day = t.day + day_offset;
    if (day > std::numeric_limits<int32_t>::max()) {
        return std::nullopt;
    }
    cal.clear();
    cal.set(t.year, t.month - 1, static_cast<int32_t>(day), t.hour, t.minute);
    UErrorCode status = U_ZERO_ERROR;
    const UDate ms = cal.getTime(status);
    if (U_FAILURE(status)) {
        return std::nullopt;
    }
    return static_cast<std::int64_t>(ms) / 1000;  // whole minutes: the division is exact
}

// The first occurrence that starts after `threshold`. Occurrence k starts k periods of local
// days after the first, so its UTC start is the first's plus k periods, give or take the
// zone's offset changes (hours, while a period is a week or more): k is estimated from the
// elapsed time and then corrected by a step or two, however old the meeting.
std::optional<Occurrence> first_starting_after(const MeetingTime& m, std::int64_t threshold) {
    if (!valid_fields(m.start)) {
        return std::nullopt;
    }
    auto cal = make_calendar(m.time_zone);
    if (!cal) {
        return std::nullopt;
    }
    const std::int64_t duration = std::int64_t{std::max(0, m.duration_minutes)} * 60;
    const std::int64_t period_days = m.repeat == Repeat::Biweekly ? 14 : 7;
    auto start_of = [&](std::int64_t k) { return start_at(*cal, m.start, k * period_days); };

    auto first = start_of(0);
    if (!first) {
        return std::nullopt;
    }
    if (*first > threshold) {
        return Occurrence{*first, *first + duration};
    }
    if (m.repeat == Repeat::None) {
        return std::nullopt;
    }
    std::int64_t k = (threshold - *first) / (period_days * kDay) + 1;
    // Back while the previous occurrence also starts after the threshold (k = 0 did not)...
    while (k > 1) {
        auto previous = start_of(k - 1);
        if (!previous) {
            return std::nullopt;
        }
        if (*previous <= threshold) {
            break;
        }
        --k;
    }
    // ...and forward while this one does not.
    for (;;) {
        auto start = start_of(k);
        if (!start) {
            return std::nullopt;
        }
        if (*start > threshold) {
            return Occurrence{*start, *start + duration};
        }
        ++k;
    }
}

bool is_german(std::string_view lang) {
    if (lang.size() < 2 || (lang.size() > 2 && lang[2] != '-' && lang[2] != '_')) {
        return false;
    }
    return (lang[0] == 'd' || lang[0] == 'D') && (lang[1] == 'e' || lang[1] == 'E');
}

// "2026-12-08 17:00 UTC", for when ICU cannot build a formatter (its locale data is missing).
std::string plain_utc(std::int64_t unix_seconds) {
    // Days to a civil date (H. Hinnant's days_from_civil inverse): plain arithmetic, no zone.
    std::int64_t days = unix_seconds / kDay;
    std::int64_t secs = unix_seconds % kDay;
    if (secs < 0) {
        secs += kDay;
        --days;
    }
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const std::int64_t doe = days - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t mo = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t y = yoe + era * 400 + (mo <= 2 ? 1 : 0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld %02lld:%02lld UTC",
                  static_cast<long long>(y), static_cast<long long>(mo), static_cast<long long>(d),
                  static_cast<long long>(secs / 3600), static_cast<long long>(secs % 3600 / 60));
    return buf;
}

}  // namespace

std::optional<Repeat> parse_repeat(std::string_view text) {
    if (text == "none" || text == "once") {
        return Repeat::None;
    }
    if (text == "weekly") {
        return Repeat::Weekly;
    }
    if (text == "biweekly") {
        return Repeat::Biweekly;
    }
    return std::nullopt;
}

std::string_view repeat_name(Repeat repeat) {
    switch (repeat) {
        case Repeat::Weekly:
            return "weekly";
        case Repeat::Biweekly:
            return "biweekly";
        case Repeat::None:
            break;
    }
    return "none";
}

std::optional<LocalDateTime> parse_local_datetime(std::string_view text) {
    // YYYY-MM-DDTHH:MM; a space instead of the T, as people type it on the command line.
    if (text.size() != 16 || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != ' ') || text[13] != ':') {
        return std::nullopt;
    }
    LocalDateTime t;
    if (!read_digits(text, 0, 4, t.year) || !read_digits(text, 5, 2, t.month) ||
        !read_digits(text, 8, 2, t.day) || !read_digits(text, 11, 2, t.hour) ||
        !read_digits(text, 14, 2, t.minute)) {
        return std::nullopt;
    }
    // Range checks here: the lenient calendar would otherwise turn 02-30 into 03-02.
    if (!valid_fields(t)) {
        return std::nullopt;
    }
    return t;
}

std::string format_local_datetime(const LocalDateTime& t) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d", t.year, t.month, t.day, t.hour,
                  t.minute);
    return buf;
}

bool valid_time_zone(std::string_view tz) {
    // IANA names are short ASCII (letters, digits, / _ - +); this also keeps NULs and invalid
    // UTF-8 away from ICU.
    if (tz.empty() || tz.size() > 64) {
        return false;
    }
    for (char c : tz) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '-' || c == '+';
        if (!ok) {
            return false;
        }
    }
    // TimeZone::createTimeZone() never fails: an unknown ID silently becomes "Etc/Unknown"
    // (GMT). getCanonicalID() does fail for it, and tells system (tz database) IDs from custom
    // ones like "GMT+05:00".
    UErrorCode status = U_ZERO_ERROR;
    icu::UnicodeString canonical;
    UBool system = false;
    icu::TimeZone::getCanonicalID(to_unicode(tz), canonical, system, status);
    return U_SUCCESS(status) && system && canonical != icu::UnicodeString(u"Etc/Unknown");
}

std::optional<Occurrence> current_or_next(const MeetingTime& m, std::int64_t now) {
    if (now > kLastSecond) {
        return std::nullopt;
    }
    now = std::max(now, -kLastSecond);
    // Running at now means ending after now: the first occurrence starting after now - length.
    const std::int64_t duration = std::int64_t{std::max(0, m.duration_minutes)} * 60;
    return first_starting_after(m, now - duration);
}

std::optional<Occurrence> next_after(const MeetingTime& m, std::int64_t after) {
    if (after > kLastSecond) {
        return std::nullopt;
    }
    after = std::max(after, -kLastSecond);
    return first_starting_after(m, after - 1);
}

std::string format_for_people(std::int64_t unix_seconds, std::string_view tz,
                              std::string_view lang) {
    const icu::Locale locale = is_german(lang) ? icu::Locale("de") : icu::Locale("en");
    auto zone = make_zone(tz);
    const bool known_zone = zone != nullptr;
    if (!known_zone) {
        zone.reset(icu::TimeZone::getGMT()->clone());
    }
    std::unique_ptr<icu::DateFormat> date(
        icu::DateFormat::createDateInstance(icu::DateFormat::kFull, locale));
    std::unique_ptr<icu::DateFormat> time(
        icu::DateFormat::createTimeInstance(icu::DateFormat::kShort, locale));
    if (!date || !time || unix_seconds > kLastSecond || unix_seconds < -kLastSecond) {
        return plain_utc(unix_seconds);
    }
    date->setTimeZone(*zone);
    time->setTimeZone(*zone);
    const UDate when = static_cast<UDate>(unix_seconds) * 1000.0;
    // Date and time apart, joined with a comma: CLDR's own glue changes between versions
    // ("{1} 'um' {0}", "{1}, {0}"), and the comma reads naturally in both languages.
    icu::UnicodeString text;
    date->format(when, text);
    text += u", ";
    time->format(when, text);
    // CLDR 42 (ICU 72) put a narrow no-break space before "PM"; fonts on some clients lack it.
    text.findAndReplace(u"\u202F", u" ");
    if (!known_zone) {
        text += u" UTC";
    }
    return to_utf8(text);
}

}  // namespace haven::groups
