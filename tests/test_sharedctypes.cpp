// sharedctypes.hpp: Value, Array, RawValue, RawArray shared between real processes.
#include <array>
#include <mutex>

#include "support.hpp"

class SharedCTypes : public ProcessTest {};

namespace {
struct Point {
    double x, y;
};
}  // namespace

TEST_F(SharedCTypes, ValueWrittenByAChildIsSeenByTheParent) {
    mp::Value<double> num(0.0);
    mp::RawValue<Point> point(Point{1, 2});
    mp::Process p(
        [](mp::Value<double>& shared_num, mp::RawValue<Point>& shared_point) {
            shared_num.set_value(3.1415927);
            shared_point.get_obj().y = -5;
        },
        num, point);
    p.start();
    p.join();
    EXPECT_DOUBLE_EQ(num.value(), 3.1415927);
    EXPECT_DOUBLE_EQ(point.value().y, -5);
    EXPECT_DOUBLE_EQ(point.value().x, 1);
}

TEST_F(SharedCTypes, IncrementsUnderTheValuesLockAreExact) {
    mp::Value<int> counter(0);
    std::vector<mp::Process> ps;
    for (int i = 0; i < 2; ++i)
        ps.emplace_back(
            [](mp::Value<int>& count) {
                for (int k = 0; k < 20000; ++k) {
                    std::lock_guard guard(count.get_lock());
                    count.set_value(count.value() + 1);  // value() re-enters the RLock
                }
            },
            counter);
    for (auto& p : ps) p.start();
    for (auto& p : ps) p.join();
    EXPECT_EQ(counter.value(), 40000);
}

TEST_F(SharedCTypes, ArrayNegatedByAChild) {
    mp::Array<int> arr({0, 1, 2, 3, 4});
    mp::Process p(
        [](mp::Array<int>& shared_arr) {
            std::lock_guard guard(shared_arr);
            for (auto& x : shared_arr) x = -x;
        },
        arr);
    p.start();
    p.join();
    EXPECT_EQ(arr.to_vector(), (std::vector<int>{0, -1, -2, -3, -4}));
    EXPECT_EQ(arr.size(), 5u);
}

TEST_F(SharedCTypes, ArrayFromSizeIsZeroFilled) {
    for (int round = 0; round < 3; ++round) {
        mp::Array<long> arr(100);
        for (long v : arr.span()) EXPECT_EQ(v, 0);
        arr[7] = 7;
    }
    mp::RawArray<int> empty(0);
    EXPECT_EQ(empty.size(), 0u);
}

TEST_F(SharedCTypes, ArrayErrorsArePythons) {
    mp::RawArray<int> arr({1, 2, 3});
    EXPECT_THROW_WITH(arr.at(3), std::out_of_range, "invalid index");
    EXPECT_THROW_WITH(arr.assign(std::vector<int>{1, 2}), mp::ValueError, "Can only assign sequence of same size");
    arr.assign(std::vector<int>{7, 8, 9});
    EXPECT_EQ(arr.at(2), 9);
}

TEST_F(SharedCTypes, CharArrayAsAString) {
    mp::Array<char> s(10);
    s.set_value("hello");
    EXPECT_EQ(s.value(), "hello");
    mp::Process p([](mp::Array<char>& text) { text.set_value("world!"); }, s);
    p.start();
    p.join();
    EXPECT_EQ(s.value(), "world!");
    EXPECT_EQ(s.raw().size(), 10u);
    s.set_value("0123456789");  // exactly full: no terminator needed
    EXPECT_EQ(s.value(), "0123456789");
    EXPECT_THROW_WITH(s.set_value("01234567890"), mp::ValueError, "byte string too long");
}

TEST_F(SharedCTypes, ValueCanShareALockWithAnotherValue) {
    mp::RLock lock;
    mp::Value<int> a(1, lock), b(2, lock);
    std::lock_guard guard(a.get_lock());
    EXPECT_TRUE(b.get_lock().is_mine());
    EXPECT_EQ(a.value() + b.value(), 3);
}

TEST_F(SharedCTypes, MemoryIsFreedWithTheLastHandle) {
    // memfd mappings: every handle copy shares one mapping; dropping them unmaps it (a large
    // array has a file of its own; small objects share arenas).
    auto count_maps = [] {
        FILE* f = std::fopen("/proc/self/maps", "r");
        int n = 0;
        char line[512];
        while (std::fgets(line, sizeof line, f))
            if (std::strstr(line, "/memfd:polyproc")) ++n;
        std::fclose(f);
        return n;
    };
    const int before = count_maps();
    {
        mp::RawArray<char> big(1 << 20);
        auto copy = big;
        EXPECT_GT(count_maps(), before);
    }
    EXPECT_EQ(count_maps(), before);
}
