// reduction.hpp: the codec. Round trips of every supported kind of type, type identity,
// and thousands of random corruptions that must end in mp::DecodeError, never UB.
#include <gtest/gtest.h>

#include <chrono>
#include <polyproc/reduction.hpp>
#include <random>

#include "support.hpp"

namespace {

struct Point {  // trivially copyable: sent as bytes
    double x, y;
    int tag;
    friend bool operator==(const Point&, const Point&) = default;
};

struct Person {  // a user type through cereal
    std::string name;
    int age = 0;
    std::vector<std::string> tags;
    std::optional<Point> home;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(name, age, tags, home);
    }
    friend bool operator==(const Person&, const Person&) = default;
};

enum class Color : std::uint8_t { red, green };

template <class T>
void expect_round_trip(const T& value) {
    EXPECT_EQ(mp::loads<T>(mp::dumps(value)), value);
}

using Nested = std::map<std::string, std::vector<std::variant<int, std::string, std::optional<double>>>>;

}  // namespace

static_assert(mp::Serializable<int>);
static_assert(mp::Serializable<Point>);
static_assert(mp::Serializable<Person>);
static_assert(mp::Serializable<std::string>);
static_assert(mp::Serializable<Nested>);
static_assert(!mp::Serializable<int*>);
static_assert(!mp::Serializable<const char*>);
static_assert(!mp::Serializable<std::string_view>);
static_assert(!mp::Serializable<std::span<int>>);
struct NotSendable {
    std::string s;
};
static_assert(!mp::Serializable<NotSendable>);
// Pointers and views are refused wherever a standard template holds them.
static_assert(!mp::Serializable<std::vector<int*>>);
static_assert(!mp::Serializable<std::array<int*, 2>>);
static_assert(!mp::Serializable<std::optional<std::string_view>>);
static_assert(!mp::Serializable<std::vector<std::string_view>>);
static_assert(!mp::Serializable<std::pair<std::string_view, int>>);
static_assert(!mp::Serializable<std::map<std::string, std::vector<const char*>>>);
static_assert(!mp::Serializable<std::vector<NotSendable>>);
static_assert(!mp::Serializable<std::variant<int, NotSendable>>);
static_assert(mp::Serializable<std::vector<Point>>);
static_assert(mp::Serializable<std::map<std::string, std::tuple<int, std::optional<Point>>>>);

TEST(Reduction, RoundTripsScalarsAndTriviallyCopyableStructs) {
    expect_round_trip(42);
    expect_round_trip(-1.5);
    expect_round_trip('c');
    expect_round_trip(true);
    expect_round_trip(Color::green);
    expect_round_trip(Point{1.0, -2.0, 7});
    expect_round_trip(std::array<int, 4>{1, 2, 3, 4});
    expect_round_trip(std::chrono::milliseconds(1234));
    expect_round_trip(std::pair<int, double>{3, 4.5});
}

TEST(Reduction, TriviallyCopyableIsSentAsItsBytes) {
    // Header + the object's own bytes: no serialization step.
    EXPECT_EQ(mp::dumps(Point{1, 2, 3}).size(), mp::detail::kHeaderSize + sizeof(Point));
}

TEST(Reduction, RoundTripsStandardContainers) {
    expect_round_trip(std::string("hello"));
    expect_round_trip(std::string());
    expect_round_trip(std::string(100000, 'x'));
    expect_round_trip(std::vector<int>{1, 2, 3});
    expect_round_trip(std::vector<bool>{true, false, true});
    expect_round_trip(std::vector<std::string>{"a", "", "ccc"});
    expect_round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
    expect_round_trip(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}});
    expect_round_trip(std::set<std::string>{"x", "y"});
    expect_round_trip(std::optional<std::string>("x"));
    expect_round_trip(std::optional<std::string>());
    expect_round_trip(std::variant<int, std::string>(std::string("v")));
    expect_round_trip(std::tuple<int, std::string, double>{1, "two", 3.0});
    expect_round_trip(std::pair<std::string, std::vector<int>>{"k", {1, 2}});
    expect_round_trip(std::deque<int>{4, 5});
    expect_round_trip(std::list<std::string>{"l"});
    expect_round_trip(Nested{{"k", {1, std::string("s"), std::optional<double>(2.5), std::optional<double>()}}});
}

TEST(Reduction, RoundTripsUserTypesThroughCereal) {
    expect_round_trip(Person{"Ann", 33, {"x", "y"}, Point{1, 2, 3}});
    expect_round_trip(std::vector<Person>{{"A", 1, {}, std::nullopt}, {"B", 2, {"t"}, Point{}}});
}

TEST(Reduction, WrongTypeIsAClearErrorNotGarbage) {
    auto bytes = mp::dumps(std::string("hello"));
    EXPECT_THROW_WITH(mp::loads<int>(bytes), mp::DecodeError,
                      "type mismatch: expected int but the message holds std::__cxx11::basic_string<char>");
    auto d = mp::dumps(1.5);
    EXPECT_THROW_WITH(mp::loads<float>(d), mp::DecodeError, "expected float but the message holds double");
    EXPECT_THROW_WITH(mp::loads<std::vector<int>>(mp::dumps(std::vector<long>{1})), mp::DecodeError, "type mismatch");
}

TEST(Reduction, ForeignAndShortMessagesAreRejected) {
    auto raw = string_to_bytes("raw bytes from a Python peer");
    EXPECT_THROW_WITH(mp::loads<int>(raw), mp::DecodeError, "not a polyproc object");
    EXPECT_THROW_WITH(mp::loads<int>(string_to_bytes("PPC")), mp::DecodeError,
                      "shorter than polyproc's 20-byte header");
    EXPECT_THROW_WITH(mp::loads<int>(std::vector<std::byte>{}), mp::DecodeError, "shorter");
}

TEST(Reduction, TruncatedMessagesAreRejected) {
    auto full = mp::dumps(Person{"Ann", 33, {"x", "y"}, Point{1, 2, 3}});
    for (std::size_t n = 0; n < full.size(); ++n) {
        std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_THROW(mp::loads<Person>(cut), mp::DecodeError) << "cut at " << n;
    }
    auto p = mp::dumps(Point{1, 2, 3});
    p.pop_back();
    EXPECT_THROW(mp::loads<Point>(p), mp::DecodeError);
}

namespace {

template <class T>
void fuzz_whole_messages(const T& value, std::mt19937_64& rng, int rounds) {
    const auto good = mp::dumps(value);
    for (int i = 0; i < rounds; ++i) {
        auto bad = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) {
            auto& b = bad[rng() % bad.size()];
            b ^= std::byte(1 + rng() % 255);
        }
        if (rng() % 4 == 0) bad.resize(rng() % bad.size());  // truncate too
        if (bad == good) continue;
        EXPECT_THROW(mp::loads<T>(bad), mp::DecodeError) << "round " << i;
    }
}

// Corrupts the payload behind a valid header and checksum, so the decoder itself (not the
// checksum) must reject or survive the bytes: this is what guards against UB on hostile input.
template <class T>
void fuzz_payloads(const T& value, std::mt19937_64& rng, int rounds) {
    const auto good = mp::dumps(value);
    const std::span<const std::byte> payload(good.data() + mp::detail::kHeaderSize,
                                             good.size() - mp::detail::kHeaderSize);
    int rejected = 0;
    for (int i = 0; i < rounds; ++i) {
        std::vector<std::byte> bad(payload.begin(), payload.end());
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips && !bad.empty(); ++f) bad[rng() % bad.size()] = std::byte(rng() % 256);
        if (rng() % 3 == 0 && !bad.empty()) bad.resize(rng() % bad.size());
        try {
            (void)mp::detail::decode_payload<T>(bad);  // may succeed with other values: that is fine
        } catch (const mp::DecodeError&) {
            ++rejected;
        }
    }
    EXPECT_GT(rejected, 0);
}

}  // namespace

TEST(Reduction, ThousandsOfRandomCorruptionsAlwaysThrowDecodeError) {
    std::mt19937_64 rng(12345);
    fuzz_whole_messages(42, rng, 2000);
    fuzz_whole_messages(std::string("hello world"), rng, 2000);
    fuzz_whole_messages(Person{"Ann", 33, {"x", "y"}, Point{1, 2, 3}}, rng, 3000);
    fuzz_whole_messages(Nested{{"k", {1, std::string("s"), std::optional<double>(2.5)}}}, rng, 3000);
}

TEST(Reduction, DecoderSurvivesThousandsOfHostilePayloads) {
    std::mt19937_64 rng(6789);
    fuzz_payloads(Person{"Ann", 33, {"x", "y"}, Point{1, 2, 3}}, rng, 5000);
    fuzz_payloads(Nested{{"k", {1, std::string("s"), std::optional<double>(2.5)}}, {"j", {}}}, rng, 5000);
    fuzz_payloads(std::vector<std::string>{"a", "bb", "ccc"}, rng, 3000);
    fuzz_payloads(std::map<int, std::vector<bool>>{{1, {true, false}}}, rng, 3000);
    fuzz_payloads(std::tuple<bool, std::variant<int, std::string>, std::set<int>>{true, "x", {1, 2}}, rng, 3000);
}

TEST(Reduction, HugeLengthPrefixDoesNotAllocate) {
    // A payload claiming 2^60 elements with 8 bytes behind it must fail fast, not allocate.
    std::vector<std::byte> payload(16, std::byte{0});
    const std::uint64_t n = 1ull << 60;
    std::memcpy(payload.data(), &n, 8);
    EXPECT_THROW_WITH(mp::detail::decode_payload<std::vector<std::string>>(payload), mp::DecodeError, "claims");
    EXPECT_THROW_WITH(mp::detail::decode_payload<std::string>(payload), mp::DecodeError, "claims");
}

TEST(Reduction, InvalidBoolIsRejected) {
    auto good = mp::dumps(std::vector<std::optional<bool>>{true});
    std::vector<std::byte> payload(good.begin() + mp::detail::kHeaderSize, good.end());
    payload.back() = std::byte{7};
    EXPECT_THROW_WITH(mp::detail::decode_payload<std::vector<std::optional<bool>>>(payload), mp::DecodeError, "bool");
}
