// Unit tests for group meeting times (modules/groups/schedule.hpp): DST, repeats, parsing, text.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "modules/groups/schedule.hpp"

using namespace haven::groups;

// Every expected UTC value below was computed independently of ICU, with Python's zoneinfo
// (the system tz database) while writing the tests, e.g. for 2026-10-20 18:00 in Berlin:
//   python3 -c "import zoneinfo,datetime as d; z=zoneinfo.ZoneInfo('Europe/Berlin');
//               print(int(d.datetime(2026,10,20,18,0,tzinfo=z).timestamp()))"
// Local times that do not exist or exist twice use fold=0 (the offset before the transition),
// which is what schedule.hpp documents for ICU. Plain UTC instants ("... Z") were computed the
// same way with tzinfo=datetime.timezone.utc.

namespace {

MeetingTime meeting(const char* start, const char* tz, int minutes, Repeat repeat) {
    auto t = parse_local_datetime(start);
    REQUIRE(t);
    return MeetingTime{*t, tz, minutes, repeat};
}

// Europe/Berlin, 18:00 local on these dates (Tuesdays; CEST = 16:00Z, CET = 17:00Z).
constexpr std::int64_t kBerlin_2026_10_13 = 1791907200;  // CEST
constexpr std::int64_t kBerlin_2026_10_20 = 1792512000;  // CEST, 16:00Z
constexpr std::int64_t kBerlin_2026_10_27 = 1793120400;  // CET after 2026-10-25, 17:00Z
constexpr std::int64_t kBerlin_2026_11_10 = 1794330000;  // CET
constexpr std::int64_t kBerlin_2026_12_08 = 1796749200;  // CET, 17:00Z
constexpr std::int64_t kBerlin_2027_01_05 = 1799168400;  // CET
constexpr std::int64_t kBerlin_2027_03_16 = 1805216400;  // CET, 17:00Z
constexpr std::int64_t kBerlin_2027_03_23 = 1805821200;  // CET, 17:00Z
constexpr std::int64_t kBerlin_2027_03_30 = 1806422400;  // CEST after 2027-03-28, 16:00Z
constexpr std::int64_t kBerlin_2016_10_11 = 1476201600;  // CEST

// Plain UTC instants.
constexpr std::int64_t kUtc_2026_06_01 = 1780272000;
constexpr std::int64_t kUtc_2026_10_14 = 1791936000;
constexpr std::int64_t kUtc_2026_10_21_1200 = 1792584000;
constexpr std::int64_t kUtc_2026_10_20_1630 = 1792513800;
constexpr std::int64_t kUtc_2027_03_17 = 1805241600;

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kWeek = 7 * 24 * kHour;

}  // namespace

TEST_CASE("a weekly Berlin meeting keeps 18:00 local across both DST changes") {
    auto m = meeting("2026-10-13T18:00", "Europe/Berlin", 60, Repeat::Weekly);

    auto a = next_after(m, kUtc_2026_10_14);
    REQUIRE(a);
    CHECK(a->start == kBerlin_2026_10_20);
    CHECK(a->start % (24 * kHour) == 16 * kHour);  // 16:00 UTC in summer time
    CHECK(a->end == a->start + kHour);

    // DST ends 2026-10-25: the next Tuesday is an hour later in UTC, not exactly a week on.
    auto b = next_after(m, a->start + 1);
    REQUIRE(b);
    CHECK(b->start == kBerlin_2026_10_27);
    CHECK(b->start % (24 * kHour) == 17 * kHour);
    CHECK(b->start - a->start == kWeek + kHour);

    // Spring forward on 2027-03-28: back to 16:00 UTC.
    auto c = next_after(m, kUtc_2027_03_17);
    REQUIRE(c);
    CHECK(c->start == kBerlin_2027_03_23);
    auto d = next_after(m, c->start + 1);
    REQUIRE(d);
    CHECK(d->start == kBerlin_2027_03_30);
    CHECK(d->start % (24 * kHour) == 16 * kHour);
    CHECK(d->start - c->start == kWeek - kHour);

    // An occurrence starting exactly at `after` counts.
    auto same = next_after(m, kBerlin_2027_03_16);
    REQUIRE(same);
    CHECK(same->start == kBerlin_2027_03_16);
}

TEST_CASE("current_or_next returns the running occurrence, then the next one") {
    auto m = meeting("2026-10-13T18:00", "Europe/Berlin", 90, Repeat::Biweekly);

    auto first = current_or_next(m, kBerlin_2026_10_13 - 1);
    REQUIRE(first);
    CHECK(first->start == kBerlin_2026_10_13);
    CHECK(first->end == kBerlin_2026_10_13 + 90 * 60);

    // Biweekly: after 10-13 comes 10-27, never 10-20.
    auto later = current_or_next(m, kUtc_2026_10_14);
    REQUIRE(later);
    CHECK(later->start == kBerlin_2026_10_27);
    auto after_first = next_after(m, kBerlin_2026_10_13 + 1);
    REQUIRE(after_first);
    CHECK(after_first->start == kBerlin_2026_10_27);

    // During the meeting (start <= now < end) it is the one returned.
    for (std::int64_t now :
         {kBerlin_2026_10_27, kBerlin_2026_10_27 + 45 * 60, kBerlin_2026_10_27 + 90 * 60 - 1}) {
        CAPTURE(now);
        auto running = current_or_next(m, now);
        REQUIRE(running);
        CHECK(running->start == kBerlin_2026_10_27);
        CHECK(running->end == kBerlin_2026_10_27 + 90 * 60);
    }
    // At its end, the next one (two weeks on).
    auto next = current_or_next(m, kBerlin_2026_10_27 + 90 * 60);
    REQUIRE(next);
    CHECK(next->start == kBerlin_2026_11_10);
}

TEST_CASE("a one-off meeting is there until it ends, then gone") {
    auto m = meeting("2026-12-08T18:00", "Europe/Berlin", 60, Repeat::None);

    auto before = current_or_next(m, kUtc_2026_06_01);
    REQUIRE(before);
    CHECK(before->start == kBerlin_2026_12_08);
    CHECK(before->end == kBerlin_2026_12_08 + kHour);

    auto during = current_or_next(m, kBerlin_2026_12_08 + kHour - 1);
    REQUIRE(during);
    CHECK(during->start == kBerlin_2026_12_08);

    CHECK_FALSE(current_or_next(m, kBerlin_2026_12_08 + kHour));
    CHECK_FALSE(current_or_next(m, kBerlin_2026_12_08 + 400 * kWeek));
    REQUIRE(next_after(m, kBerlin_2026_12_08));
    CHECK_FALSE(next_after(m, kBerlin_2026_12_08 + 1));
}

TEST_CASE("a repeating meeting that starts in the future begins with its first date") {
    auto m = meeting("2027-01-05 18:00", "Europe/Berlin", 60, Repeat::Weekly);
    auto occ = current_or_next(m, kUtc_2026_06_01);
    REQUIRE(occ);
    CHECK(occ->start == kBerlin_2027_01_05);
    auto listed = next_after(m, kUtc_2026_06_01);
    REQUIRE(listed);
    CHECK(listed->start == kBerlin_2027_01_05);
}

TEST_CASE("a series started ten years ago still lands on the right dates") {
    auto weekly = meeting("2016-10-11T18:00", "Europe/Berlin", 60, Repeat::Weekly);
    auto w = current_or_next(weekly, kUtc_2026_10_21_1200);
    REQUIRE(w);
    CHECK(w->start == kBerlin_2026_10_27);
    auto running = current_or_next(weekly, kUtc_2026_10_20_1630);
    REQUIRE(running);
    CHECK(running->start == kBerlin_2026_10_20);
    auto first = current_or_next(weekly, kBerlin_2016_10_11 - 10);
    REQUIRE(first);
    CHECK(first->start == kBerlin_2016_10_11);

    // 2016-10-11 + 14 n days falls on 2026-10-13 and 2026-10-27 (3654 days = 261 x 14), not
    // on 2026-10-20: (date(2026,10,20) - date(2016,10,11)).days / 14 == 261.5.
    auto biweekly = meeting("2016-10-11T18:00", "Europe/Berlin", 60, Repeat::Biweekly);
    auto b = current_or_next(biweekly, kUtc_2026_10_14);
    REQUIRE(b);
    CHECK(b->start == kBerlin_2026_10_27);
    auto b2 = current_or_next(biweekly, kBerlin_2026_10_13 + 30 * 60);
    REQUIRE(b2);
    CHECK(b2->start == kBerlin_2026_10_13);
}

TEST_CASE("finding an occurrence does not walk the weeks one by one") {
    // 1970-01-06 (a Tuesday) to 9000-07-01 is about 366,000 weeks: walking them would take
    // seconds per call. 9000-07-04 is the first Tuesday from 9000-07-01; 18:00 CEST there is
    // 221861088000 (zoneinfo, from the zone's POSIX rule for far-future dates); 9000-07-01
    // 00:00Z is 221861030400.
    auto m = meeting("1970-01-06T18:00", "Europe/Berlin", 60, Repeat::Weekly);
    constexpr std::int64_t kUtc_9000_07_01 = 221861030400;
    constexpr std::int64_t kBerlin_9000_07_04 = 221861088000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        auto occ = current_or_next(m, kUtc_9000_07_01 + i);
        REQUIRE(occ);
        CHECK(occ->start == kBerlin_9000_07_04);
    }
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(elapsed < std::chrono::seconds(1));

    // Past the year 9999 there is nothing to schedule.
    CHECK_FALSE(current_or_next(m, 253402300800));
}

TEST_CASE("New York changes on its own dates, not Europe's") {
    // Mondays 09:00 America/New_York: EDT = 13:00Z, EST = 14:00Z. The US falls back on
    // 2026-11-01 (Europe already on 10-25) and springs forward on 2027-03-14 (Europe 03-28).
    constexpr std::int64_t kNy_2026_10_26 = 1793019600;  // EDT, 13:00Z
    constexpr std::int64_t kNy_2026_11_02 = 1793628000;  // EST, 14:00Z
    constexpr std::int64_t kNy_2027_03_08 = 1804514400;  // EST, 14:00Z
    constexpr std::int64_t kNy_2027_03_15 = 1805115600;  // EDT, 13:00Z
    auto m = meeting("2026-10-26T09:00", "America/New_York", 60, Repeat::Weekly);

    auto a = current_or_next(m, kNy_2026_10_26 + kHour);
    REQUIRE(a);
    CHECK(a->start == kNy_2026_11_02);
    CHECK(a->start - kNy_2026_10_26 == kWeek + kHour);
    auto first = current_or_next(m, kNy_2026_10_26);
    REQUIRE(first);
    CHECK(first->start == kNy_2026_10_26);
    CHECK(first->start % (24 * kHour) == 13 * kHour);

    auto b = next_after(m, kNy_2027_03_08);
    REQUIRE(b);
    CHECK(b->start == kNy_2027_03_08);
    auto c = next_after(m, b->start + 1);
    REQUIRE(c);
    CHECK(c->start == kNy_2027_03_15);
    CHECK(c->start - b->start == kWeek - kHour);
}

TEST_CASE("local times in the spring gap move forward; repeated ones take the first") {
    // Sundays 02:30 Berlin. 2027-03-28 02:30 does not exist (02:00 -> 03:00): it is read with
    // the winter offset, i.e. 03:30 CEST = 01:30Z, the same UTC time as the week before.
    constexpr std::int64_t kGap_2027_03_21 = 1805592600;  // 02:30 CET = 01:30Z
    constexpr std::int64_t kGap_2027_03_28 = 1806197400;  // "02:30" = 03:30 CEST = 01:30Z
    constexpr std::int64_t kGap_2027_04_04 = 1806798600;  // 02:30 CEST = 00:30Z
    auto m = meeting("2027-03-21T02:30", "Europe/Berlin", 60, Repeat::Weekly);
    auto a = next_after(m, kGap_2027_03_21 + 1);
    REQUIRE(a);
    CHECK(a->start == kGap_2027_03_28);
    CHECK(a->start - kGap_2027_03_21 == kWeek);
    auto b = next_after(m, a->start + 1);
    REQUIRE(b);
    CHECK(b->start == kGap_2027_04_04);

    // 2026-10-25 02:30 happens twice (CEST, then CET): the first, 00:30Z (fold=0);
    // the second would be 1792891800.
    constexpr std::int64_t kRepeated_2026_10_25 = 1792888200;
    auto once = meeting("2026-10-25T02:30", "Europe/Berlin", 30, Repeat::None);
    auto o = current_or_next(once, kUtc_2026_10_14);
    REQUIRE(o);
    CHECK(o->start == kRepeated_2026_10_25);
}

TEST_CASE("time zones must be real IANA zones") {
    CHECK(valid_time_zone("Europe/Berlin"));
    CHECK(valid_time_zone("America/New_York"));
    CHECK(valid_time_zone("UTC"));
    CHECK_FALSE(valid_time_zone("Europe/Berln"));
    CHECK_FALSE(valid_time_zone(""));
    CHECK_FALSE(valid_time_zone("Foo"));
    CHECK_FALSE(valid_time_zone("Etc/Unknown"));
    CHECK_FALSE(valid_time_zone("europe/berlin"));
    CHECK_FALSE(valid_time_zone("GMT+05:00"));  // custom offset, not a tz database zone
    CHECK_FALSE(valid_time_zone(std::string_view("Europe/Berlin\0x", 15)));

    auto m = meeting("2026-12-08T18:00", "Europe/Berln", 60, Repeat::Weekly);
    CHECK_FALSE(current_or_next(m, kUtc_2026_06_01));
    CHECK_FALSE(next_after(m, kUtc_2026_06_01));
    m.time_zone = "";
    CHECK_FALSE(current_or_next(m, kUtc_2026_06_01));
}

TEST_CASE("local date-times parse, validate and format back") {
    auto t = parse_local_datetime("2026-12-08T18:00");
    REQUIRE(t);
    CHECK(t->year == 2026);
    CHECK(t->month == 12);
    CHECK(t->day == 8);
    CHECK(t->hour == 18);
    CHECK(t->minute == 0);
    CHECK(format_local_datetime(*t) == "2026-12-08T18:00");

    auto spaced = parse_local_datetime("2026-12-08 18:00");
    REQUIRE(spaced);
    CHECK(format_local_datetime(*spaced) == "2026-12-08T18:00");
    auto early = parse_local_datetime("2028-02-29T00:05");  // a leap day
    REQUIRE(early);
    CHECK(format_local_datetime(*early) == "2028-02-29T00:05");
    CHECK(parse_local_datetime("2026-12-31T23:59"));

    // Out of range (the lenient calendar would quietly roll these over), then not the format.
    const char* const bad_inputs[] = {
        "2026-13-01T10:00",
        "2026-00-10T10:00",
        "2026-02-30T10:00",
        "2027-02-29T10:00",
        "2026-04-31T10:00",
        "2026-12-00T10:00",
        "2026-12-08T24:00",
        "2026-12-08T18:60",
        "0000-01-01T00:00",
        "1969-12-31T23:59",
        "",
        "junk",
        "2026-12-08",
        "2026-12-08T18:00:00",
        "2026-12-08T18:00Z",
        "2026-1-08T18:00",
        "2026/12/08T18:00",
        "2026-12-08x18:00",
        "+026-12-08T18:00",
        "2026-12-08T1a:00",
        " 2026-12-08T18:00",
    };
    for (const char* bad : bad_inputs) {
        CAPTURE(bad);
        CHECK_FALSE(parse_local_datetime(bad));
    }
}

TEST_CASE("repeat names round-trip") {
    CHECK(parse_repeat("none") == Repeat::None);
    CHECK(parse_repeat("once") == Repeat::None);
    CHECK(parse_repeat("weekly") == Repeat::Weekly);
    CHECK(parse_repeat("biweekly") == Repeat::Biweekly);
    CHECK_FALSE(parse_repeat(""));
    CHECK_FALSE(parse_repeat("daily"));
    CHECK_FALSE(parse_repeat("Weekly"));
    for (auto r : {Repeat::None, Repeat::Weekly, Repeat::Biweekly}) {
        CHECK(parse_repeat(repeat_name(r)) == r);
    }
}

TEST_CASE("dates for people, in German and English, in the meeting's zone") {
    // 2026-12-08 17:00Z = 18:00 in Berlin (CET) = 12:00 in New York (EST).
    auto de = format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "de");
    CHECK(de == "Dienstag, 8. Dezember 2026, 18:00");
    CHECK(de.find("Dezember") != std::string::npos);
    auto en = format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "en");
    CHECK(en == "Tuesday, December 8, 2026, 6:00 PM");
    CHECK(en.find("December") != std::string::npos);

    CHECK(format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "de-AT").find("Dezember") !=
          std::string::npos);
    CHECK(format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "DE").find("18:00") !=
          std::string::npos);
    CHECK(format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "fr").find("December") !=
          std::string::npos);
    CHECK(format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "").find("6:00 PM") !=
          std::string::npos);
    CHECK(format_for_people(kBerlin_2026_12_08, "Europe/Berlin", "dev").find("December") !=
          std::string::npos);

    // Summer time: 16:00Z is 18:00 CEST.
    auto summer = format_for_people(kBerlin_2026_10_20, "Europe/Berlin", "de");
    CHECK(summer.find("Oktober") != std::string::npos);
    CHECK(summer.find("18:00") != std::string::npos);

    auto ny = format_for_people(kBerlin_2026_12_08, "America/New_York", "en");
    CHECK(ny == "Tuesday, December 8, 2026, 12:00 PM");
    CHECK(format_for_people(kBerlin_2026_12_08, "America/New_York", "de").find("12:00") !=
          std::string::npos);

    // Near midnight the date is the zone's date: 23:30Z on 12-08 is already 12-09 in Berlin.
    auto late = format_for_people(kBerlin_2026_12_08 + 6 * kHour + 30 * 60, "Europe/Berlin", "en");
    CHECK(late == "Wednesday, December 9, 2026, 12:30 AM");

    // An unknown zone: UTC, and the text says so.
    auto utc = format_for_people(kBerlin_2026_12_08, "Europe/Berln", "en");
    CHECK(utc == "Tuesday, December 8, 2026, 5:00 PM UTC");
}
