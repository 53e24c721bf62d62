#include "store/duration.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace backy::store {
namespace {

TEST(ScheduleTest, DurationsParseAndFormat) {
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("15m"), 900);
  EXPECT_EQ(*ParseDuration("1h"), 3600);
  EXPECT_EQ(*ParseDuration("1d"), 86400);
  EXPECT_EQ(*ParseDuration("2w"), 14 * 86400);
  EXPECT_EQ(*ParseDuration("30"), 30);
  EXPECT_FALSE(ParseDuration("1y").ok());
  EXPECT_FALSE(ParseDuration("0h").ok());
  EXPECT_FALSE(ParseDuration("hourly").ok());
  EXPECT_EQ(FormatDuration(86400), "1d");
  EXPECT_EQ(FormatDuration(7 * 86400), "1w");
  EXPECT_EQ(FormatDuration(90), "90s");
}

// Found by tests/fuzz (scheduler_config): the multiplication by the unit
// overflowed int64 (undefined behaviour) instead of being refused.
TEST(ParseDurationTest, HugeValuesAreRefusedNotWrapped) {
  EXPECT_FALSE(ParseDuration("144444444444444444d").ok());
  EXPECT_FALSE(ParseDuration("288230376151711744w").ok());
  EXPECT_FALSE(ParseDuration("9223372036854775807h").ok());
  auto year = ParseDuration("52w");
  ASSERT_OK(year.status());
  EXPECT_EQ(*year, 52 * 7 * 86400);
}

TEST(FormatDurationTest, ClockRoundsToTheSecond) {
  EXPECT_EQ(FormatDuration(0, DurationFormat::kClock), "0:00");
  EXPECT_EQ(FormatDuration(4.6, DurationFormat::kClock), "0:05");
  EXPECT_EQ(FormatDuration(59.4, DurationFormat::kClock), "0:59");
  EXPECT_EQ(FormatDuration(3599.6, DurationFormat::kClock), "1:00:00");
  EXPECT_EQ(FormatDuration(3723, DurationFormat::kClock), "1:02:03");
  EXPECT_EQ(FormatDuration(90, DurationFormat::kClock), "1:30");
}

TEST(FormatDurationTest, UnitFormParsesBack) {
  for (int64_t s : {int64_t{1}, int64_t{59}, int64_t{90}, int64_t{3600},
                    int64_t{5400}, int64_t{86400}, int64_t{14 * 86400}}) {
    auto parsed = ParseDuration(FormatDuration(s));
    ASSERT_OK(parsed.status());
    EXPECT_EQ(*parsed, s);
  }
}

}  // namespace
}  // namespace backy::store
