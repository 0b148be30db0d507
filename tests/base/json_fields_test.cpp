#include "base/json_fields.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace dsinfer {
namespace {

using nlohmann::json;

const FieldStyle kLenientFields{UnknownKeys::kIgnore, "field"};

// The FieldError `f` throws; fails the test when it throws nothing.
FieldError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FieldError& e) {
    return e;
  }
  ADD_FAILURE() << "no FieldError";
  return FieldError("", "");
}

void expect_message(const std::function<void()>& f, const std::string& message, const std::string& path) {
  FieldError e = error_of(f);
  EXPECT_EQ(std::string(e.what()), message);
  EXPECT_EQ(e.path(), path) << e.what();
}

TEST(FieldReader, ReadsEachKind) {
  json j = json::parse(R"({"n": 2.5, "i": 7, "f": 3.0, "b": true, "s": "x", "o": {"k": 1}, "l": [1, 2],
                           "ls": ["a", "b"], "e": "green", "z": null})");
  FieldReader r(j, "t.json");
  EXPECT_DOUBLE_EQ(r.number("n"), 2.5);
  EXPECT_EQ(r.integer("i"), 7);
  EXPECT_EQ(r.integer("f"), 3);  // a number with no fractional part is an integer
  EXPECT_TRUE(r.boolean("b"));
  EXPECT_EQ(r.string("s"), "x");
  EXPECT_EQ(r.object("o")["k"], 1);
  EXPECT_EQ(r.reader("o").integer("k"), 1);
  EXPECT_EQ(r.integers("l"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.numbers("l"), (std::vector<double>{1, 2}));
  EXPECT_EQ(r.strings("ls"), (std::vector<std::string>{"a", "b"}));
  enum class Color { kRed, kGreen };
  EXPECT_EQ(r.one_of<Color>("e", {{"red", Color::kRed}, {"green", Color::kGreen}}), Color::kGreen);
  EXPECT_EQ(r.value("s"), "x");
  r.allow("z");
  r.finish();
}

TEST(FieldReader, AbsentAndNullTakeTheFallback) {
  json j = json::parse(R"({"z": null})");
  FieldReader r(j, "t.json");
  for (const char* key : {"z", "absent"}) {
    EXPECT_FALSE(r.has(key));
    EXPECT_EQ(r.optional_value(key), nullptr);
    EXPECT_FALSE(r.optional_number(key));
    EXPECT_FALSE(r.optional_integer(key));
    EXPECT_FALSE(r.optional_string(key));
    EXPECT_FALSE(r.optional_reader(key));
    EXPECT_EQ(r.optional_array(key), nullptr);
    EXPECT_DOUBLE_EQ(r.number_or(key, 1.5), 1.5);
    EXPECT_EQ(r.integer_or(key, 4), 4);
    EXPECT_EQ(r.boolean_or(key, true), true);
    EXPECT_EQ(r.string_or(key, "d"), "d");
    EXPECT_EQ(r.one_of_or(key, 2, {{"a", 1}}), 2);
  }
  r.finish();  // "z" was read
  // The fallback is the caller's: it is not checked against the range.
  EXPECT_EQ(r.integer_or("absent", 0, IntRange::positive()), 0);
}

TEST(FieldReader, MissingKeysNameOriginAndPath) {
  json j = json::parse(R"({"a": {"b": {}}})");
  FieldReader r(j, "t.json");
  expect_message([&] { r.number("x"); }, "t.json: missing key 'x'", "x");
  FieldReader b = r.reader("a").reader("b");
  expect_message([&] { b.integer("c"); }, "t.json: missing key 'a.b.c'", "a.b.c");
  FieldReader p(j, "hw.json", "profiles[2]");
  expect_message([&] { p.string("name"); }, "hw.json: missing key 'profiles[2].name'", "profiles[2].name");
  FieldReader api(j, "", "", kLenientFields);
  expect_message([&] { api.string("model"); }, "missing field 'model'", "model");
}

TEST(FieldReader, WrongTypesNameTheKeyAndTheValue) {
  json j = json::parse(R"({"s": "two", "n": 1, "o": [1], "l": {"a": 1}, "b": 0})");
  FieldReader r(j, "t.json");
  expect_message([&] { r.number("s"); }, "t.json: key 's' must be a number, got \"two\"", "s");
  expect_message([&] { r.integer("s"); }, "t.json: key 's' must be an integer, got \"two\"", "s");
  expect_message([&] { r.number("s", NumberRange::positive()); }, "t.json: key 's' must be a number, got \"two\"", "s");
  expect_message([&] { r.boolean("b"); }, "t.json: key 'b' must be true or false, got 0", "b");
  expect_message([&] { r.string("n"); }, "t.json: key 'n' must be a string, got 1", "n");
  expect_message([&] { r.object("o"); }, "t.json: key 'o' must be an object, got [1]", "o");
  expect_message([&] { r.reader("o"); }, "t.json: key 'o' must be an object, got [1]", "o");
  expect_message([&] { r.array("l"); }, "t.json: key 'l' must be a list, got {\"a\":1}", "l");
  expect_message([&] { r.array("o", 2); }, "t.json: key 'o' must be a list of at least 2 values, got [1]", "o");
  expect_message([&] { r.one_of<int>("s", {{"one", 1}, {"three", 3}}); },
                 "t.json: key 's' must be one of \"one\" or \"three\", got \"two\"", "s");
  expect_message([&] { r.one_of<int>("n", {{"a", 1}, {"b", 2}, {"c", 3}}); },
                 "t.json: key 'n' must be one of \"a\", \"b\" or \"c\", got 1", "n");
  const json list = json::array({1, 2}), five = 5;
  expect_message([&] { FieldReader(list, "t.json"); },
                 "t.json: the top level must be a JSON object, got [1,2]", "");
  expect_message([&] { FieldReader(five, "t.json", "a.b"); }, "t.json: key 'a.b' must be a JSON object, got 5", "a.b");
}

TEST(FieldReader, ElementErrorsNameTheIndexInTheMessageAndTheFieldInThePath) {
  json j = json::parse(R"({"l": [1, 2, -3], "s": ["a", 5], "e": []})");
  FieldReader r(j, "t.json", "", kLenientFields);
  expect_message([&] { r.integers("l", IntRange::non_negative()); },
                 "t.json: field 'l[2]' must be a non-negative integer, got -3", "l");
  expect_message([&] { r.numbers("l", NumberRange::positive()); },
                 "t.json: field 'l[2]' must be a finite positive number (greater than zero), got -3", "l");
  expect_message([&] { r.strings("s"); }, "t.json: field 's[1]' must be a string, got 5", "s");
  expect_message([&] { r.strings("e", 1); }, "t.json: field 'e' must be a non-empty list, got []", "e");
}

TEST(FieldReader, NumberRanges) {
  json j = {{"zero", 0}, {"neg", -1}, {"half", 0.5}, {"one", 1}, {"two", 2}};
  FieldReader r(j, "t.json");
  expect_message([&] { r.number("zero", NumberRange::positive()); },
                 "t.json: key 'zero' must be a finite positive number (greater than zero), got 0", "zero");
  expect_message([&] { r.number("neg", NumberRange::non_negative()); },
                 "t.json: key 'neg' must be a finite number and must not be negative, got -1", "neg");
  EXPECT_DOUBLE_EQ(r.number("zero", NumberRange::non_negative()), 0);
  expect_message([&] { r.number("zero", NumberRange::fraction()); }, "t.json: key 'zero' must be a fraction in (0, 1], got 0",
                 "zero");
  expect_message([&] { r.number("two", NumberRange::fraction()); }, "t.json: key 'two' must be a fraction in (0, 1], got 2",
                 "two");
  EXPECT_DOUBLE_EQ(r.number("one", NumberRange::fraction()), 1);
  EXPECT_DOUBLE_EQ(r.number("half", NumberRange::fraction()), 0.5);
  expect_message([&] { r.number("half", NumberRange::at_least(1)); }, "t.json: key 'half' must be a finite number >= 1, got 0.5",
                 "half");
  expect_message([&] { r.number("two", {0, 1, false, true}); }, "t.json: key 'two' must be a number in [0, 1), got 2", "two");
}

TEST(FieldReader, NumbersMustBeFinite) {
  // JSON text holds neither NaN nor Inf, but a json built in code can.
  const double inf = std::numeric_limits<double>::infinity();
  json j = {{"nan", std::nan("")}, {"inf", inf}, {"minf", -inf}};
  FieldReader r(j, "t.json");
  expect_message([&] { r.number("nan"); }, "t.json: key 'nan' must be a finite number, got nan", "nan");
  expect_message([&] { r.number("inf"); }, "t.json: key 'inf' must be a finite number, got inf", "inf");
  expect_message([&] { r.number("minf", NumberRange::positive()); },
                 "t.json: key 'minf' must be a finite positive number (greater than zero), got -inf", "minf");
  expect_message([&] { r.integer("nan"); }, "t.json: key 'nan' must be an integer, got nan", "nan");
  expect_message([&] { r.integer("inf"); }, "t.json: key 'inf' must be an integer, got inf", "inf");
}

TEST(FieldReader, IntegersAtTheEdgesOfInt64NeitherOverflowNorWrap) {
  json j = json::parse(R"({"max": 9223372036854775807, "min": -9223372036854775808, "over": 9223372036854775808,
                           "u64": 18446744073709551615, "big": 1e300, "edge": 9.223372036854775807e18,
                           "low": -9.223372036854775808e18, "frac": 1.5, "e3": 1e3})");
  FieldReader r(j, "t.json");
  EXPECT_EQ(r.integer("max"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r.integer("min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.integer("low"), std::numeric_limits<int64_t>::min());  // -2^63 is exact
  EXPECT_EQ(r.integer("e3"), 1000);
  expect_message([&] { r.integer("over"); },
                 "t.json: key 'over' must be an integer, got 9223372036854775808, which does not fit in 64 bits", "over");
  expect_message([&] { r.integer("u64"); },
                 "t.json: key 'u64' must be an integer, got 18446744073709551615, which does not fit in 64 bits", "u64");
  expect_message([&] { r.integer("big"); }, "t.json: key 'big' must be an integer, got 1e+300, which does not fit in 64 bits",
                 "big");
  // 9.223372036854775807e18 rounds to 2^63, one past the largest int64_t.
  EXPECT_NE(std::string(error_of([&] { r.integer("edge"); }).what()).find("does not fit in 64 bits"), std::string::npos);
  expect_message([&] { r.integer("frac"); }, "t.json: key 'frac' must be an integer, got 1.5", "frac");
  expect_message([&] { r.integer("min", IntRange::positive()); },
                 "t.json: key 'min' must be a positive integer, got -9223372036854775808", "min");
  expect_message([&] { r.integer("max", IntRange::positive(INT32_MAX)); },
                 "t.json: key 'max' must be an integer in [1, 2147483647], got 9223372036854775807", "max");
  expect_message([&] { r.integer("min", IntRange::non_negative()); },
                 "t.json: key 'min' must be a non-negative integer, got -9223372036854775808", "min");
  expect_message([&] { r.integer("e3", {0, 999}); }, "t.json: key 'e3' must be an integer in [0, 999], got 1000.0", "e3");
  expect_message([&] { r.integer("frac", {5, std::numeric_limits<int64_t>::max()}); },
                 "t.json: key 'frac' must be an integer, got 1.5", "frac");  // the type first
  expect_message([&] { r.integer("e3", {5000, std::numeric_limits<int64_t>::max()}); },
                 "t.json: key 'e3' must be an integer >= 5000, got 1000.0", "e3");
  expect_message([&] { r.integer("max", {std::numeric_limits<int64_t>::min(), 5}); },
                 "t.json: key 'max' must be an integer <= 5, got 9223372036854775807", "max");
  EXPECT_EQ(r.integer("max", IntRange::non_negative()), std::numeric_limits<int64_t>::max());
}

TEST(FieldReader, UnknownKeysRejectedOrIgnoredPerUse) {
  json j = json::parse(R"({"rate": 1, "note": "x", "rtae": 2})");
  FieldReader strict(j, "w.json");
  strict.number("rate");
  strict.allow("note");
  expect_message([&] { strict.finish(); }, "w.json: unknown key 'rtae' (known keys here: note, rate)", "rtae");
  FieldReader lenient(j, "config.json", "", kLenientFields);
  lenient.number("rate");
  EXPECT_NO_THROW(lenient.finish());
  // Nested readers keep the style and name the nested path.
  json nested = json::parse(R"({"a": {"b": 1}})");
  FieldReader outer(nested, "w.json");
  FieldReader a = outer.reader("a");
  expect_message([&] { a.finish(); }, "w.json: unknown key 'a.b' (known keys here: )", "a.b");
  FieldReader lenient_outer(nested, "c.json", "", kLenientFields);
  EXPECT_NO_THROW(lenient_outer.reader("a").finish());
  // has() alone does not count as reading.
  const json k = {{"k", 1}};
  FieldReader h(k, "h.json");
  EXPECT_TRUE(h.has("k"));
  EXPECT_THROW(h.finish(), FieldError);
}

TEST(FieldReader, FailNamesOriginAndPathForCallersChecks) {
  json j = json::parse(R"({"q": {"n_group": 7}})");
  FieldReader r(j, "config.json", "", kLenientFields);
  FieldReader q = r.reader("q");
  expect_message([&] { q.fail("n_group", "(", 7, ") must divide n_routed_experts (256)"); },
                 "config.json: field 'q.n_group' (7) must divide n_routed_experts (256)", "q.n_group");
  EXPECT_EQ(q.where("x"), "config.json: field 'q.x'");
  FieldReader api(j, "", "", kLenientFields);
  expect_message([&] { api.fail("stop", "holds 17 strings"); }, "field 'stop' holds 17 strings", "stop");
  // FieldError is an Error: callers that catch Error see it unchanged.
  EXPECT_THROW(api.fail("x", "bad"), Error);
}

TEST(FieldReader, LongValuesAreCutShortInMessages) {
  json j = {{"s", std::string(100000, 'a')}, {"l", std::vector<int>(1000, 7)}};
  FieldReader r(j, "t.json");
  std::string m = error_of([&] { r.number("s"); }).what();
  EXPECT_LT(m.size(), 200u) << m;
  EXPECT_NE(m.find("got \"aaaa"), std::string::npos) << m;
  EXPECT_EQ(m.substr(m.size() - 3), "...");
  m = error_of([&] { r.string("l"); }).what();
  EXPECT_LT(m.size(), 200u) << m;
  EXPECT_EQ(shown_json(json("short")), "\"short\"");
  EXPECT_NO_THROW(shown_json(json(std::string("\xff\xfe"))));  // invalid UTF-8 (built in code) is replaced
}

TEST(FieldReader, NonAsciiValuesAreCutOnACharacterBoundary) {
  std::string euros;
  for (int i = 0; i < 60; ++i) euros += "\xe2\x82\xac";  // U+20AC, three bytes each
  std::string s = shown_json(json(euros));
  ASSERT_EQ(s.substr(s.size() - 3), "...");
  std::string body = s.substr(1, s.size() - 4);  // drop the opening quote and the dots
  EXPECT_EQ(body.size() % 3, 0u) << s;
}

}  // namespace
}  // namespace dsinfer
