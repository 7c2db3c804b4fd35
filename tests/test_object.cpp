// object.hpp: mp::Object against Python's data model. Where Python decides the answer (repr,
// hash, equality, ordering errors, a set's order) a real python3 is the oracle: the test builds
// each value in C++ and writes the same value as a Python expression, and Python prints what it
// makes of it.
#include <limits>
#include <cstdio>
#include <random>

#include "pickle.hpp"
#include "support.hpp"

namespace {

using mp::Object;

struct Case {
    Object value;
    std::string python;  // the same value, as a Python expression
};

// Whether Python's hash of the value is fixed: numbers and tuples of them. (A str's or bytes'
// hash is seeded per run, None's is its address before 3.12.)
bool hash_is_pythons(const Object& o) {
    switch (o.type()) {
        case Object::Type::boolean:
        case Object::Type::integer:
        case Object::Type::floating:
            return true;
        case Object::Type::tuple:
            return std::all_of(o.begin(), o.end(), [](const Object& item) { return hash_is_pythons(item); });
        default:
            return false;
    }
}

// A double as a Python expression that reads back exactly.
std::string py_float(double x) {
    if (std::isnan(x)) return "float('nan')";
    if (std::isinf(x)) return x > 0 ? "float('inf')" : "float('-inf')";
    char buf[64];
    std::snprintf(buf, sizeof buf, "float.fromhex('%a')", x);
    return buf;
}

// A str of the given code points, as UTF-8 and as a Python expression.
std::string utf8(const std::vector<char32_t>& code_points) {
    std::string out;
    for (char32_t c : code_points) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xe0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }
    return out;
}
std::string py_str(const std::vector<char32_t>& code_points) {
    std::string out = "''.join(map(chr, [";
    for (char32_t c : code_points) out += std::to_string(static_cast<std::uint32_t>(c)) + ",";
    return out + "]))";
}

// Evaluates each case's Python expression and prints `repr(v)` (and `hash(v)` when asked).
const char* kEvalScript = R"(
import sys
for line in sys.stdin:
    kind, expr = line.rstrip('\n').split(' ', 1)
    try:
        v = eval(expr)
        print(repr(v) if kind == 'repr' else hash(v))
    except Exception as e:
        print(type(e).__name__ + ': ' + str(e))
)";

void expect_python_agrees(const std::vector<Case>& cases, bool with_hash) {
    std::string input;
    for (const auto& c : cases) {
        input += "repr " + c.python + "\n";
        if (with_hash && hash_is_pythons(c.value)) input += "hash " + c.python + "\n";
    }
    const auto lines = python_output(POLYPROC_TEST_PYTHON, kEvalScript, input);
    std::size_t k = 0, hashed = 0;
    for (const auto& c : cases) hashed += with_hash && hash_is_pythons(c.value);
    ASSERT_EQ(lines.size(), cases.size() + hashed);
    for (const auto& c : cases) {
        EXPECT_EQ(mp::repr(c.value), lines[k++]) << "python: " << c.python;
        if (with_hash && hash_is_pythons(c.value)) {
            EXPECT_EQ(std::to_string(c.value.hash()), lines[k++]) << "python: " << c.python;
        }
    }
}

}  // namespace

TEST(ObjectModel, ScalarsConvertBothWaysAndNameWhatTheyHoldOnAWrongType) {
    Object none, b = true, i = 42, f = 2.5, s = "str", by = mp::Bytes{0, 255};
    EXPECT_TRUE(none.is_none() && none.is<mp::NoneType>());
    EXPECT_TRUE(b.is<bool>() && !b.is<int>());
    EXPECT_TRUE(i.is<std::int64_t>() && i.is<int>() && !i.is<bool>() && !i.is<double>());
    EXPECT_TRUE(f.is<double>() && s.is<std::string>() && by.is<mp::Bytes>());
    EXPECT_EQ(i.as<int>(), 42);
    EXPECT_EQ(i.as<double>(), 42.0);  // an int is a number where a float is asked
    EXPECT_EQ(b.as<int>(), 1);        // and so is a bool, as in Python
    EXPECT_EQ(f.as<float>(), 2.5f);
    EXPECT_EQ(s.as<std::string>(), "str");
    EXPECT_EQ(by.as<mp::Bytes>().size(), 2u);
    EXPECT_EQ(Object(std::optional<int>()).type(), Object::Type::none);
    EXPECT_EQ(Object(std::optional<int>(3)).as<std::optional<int>>(), 3);
    EXPECT_EQ(none.as<std::optional<int>>(), std::nullopt);
    EXPECT_THROW_WITH(s.as<int>(), mp::TypeError, "mp::Object holds a str ('str'), not an int");
    EXPECT_THROW_WITH(i.as<std::string>(), mp::TypeError, "holds an int (42), not a str");
    EXPECT_THROW_WITH(f.as<bool>(), mp::TypeError, "not a bool");
}

TEST(ObjectModel, IntsBeyond64BitsAreAnErrorNeverAWrap) {
    EXPECT_EQ(Object(std::numeric_limits<std::int64_t>::min()).as_int(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(Object(std::uint64_t{1} << 62).as_int(), std::int64_t{1} << 62);
    EXPECT_THROW_WITH(Object(std::numeric_limits<std::uint64_t>::max()), mp::OverflowError, "18446744073709551615");
    EXPECT_THROW_WITH(Object(300).as<std::uint8_t>(), mp::OverflowError, "int 300 does not fit");
    EXPECT_THROW_WITH(Object(-1).as<unsigned>(), mp::OverflowError, "int -1 does not fit");
    EXPECT_THROW_WITH(Object(std::int64_t{1} << 40).as<int>(), mp::OverflowError, "does not fit");
}

TEST(ObjectModel, AStrMustBeUtf8) {
    EXPECT_THROW_WITH(Object(std::string("ok\xff")), mp::ValueError, "byte 2 is not");
    EXPECT_THROW(Object(std::string("\xc0\x80")), mp::ValueError);      // overlong NUL
    EXPECT_THROW(Object(std::string("\xed\xa0\x80")), mp::ValueError);  // a surrogate
    EXPECT_THROW(Object(std::string("\xe2\x82")), mp::ValueError);      // truncated
    EXPECT_EQ(Object(utf8({0x1f600, 'a'})).size(), 2u);                 // len() counts code points
}

TEST(ObjectModel, ContainersConvertFromAndToTheStandardOnes) {
    std::map<std::string, std::vector<int>> m{{"a", {1, 2}}, {"b", {}}};
    Object d = m;
    EXPECT_EQ(mp::repr(d), "{'a': [1, 2], 'b': []}");
    EXPECT_EQ((d.as<std::map<std::string, std::vector<int>>>()), m);
    Object t = std::tuple<int, std::string, double>{1, "x", 0.5};
    EXPECT_EQ(mp::repr(t), "(1, 'x', 0.5)");
    EXPECT_EQ((t.as<std::tuple<int, std::string, double>>()), (std::tuple<int, std::string, double>{1, "x", 0.5}));
    EXPECT_EQ((Object::list({1, 2}).as<std::pair<int, int>>()), (std::pair<int, int>{1, 2}));
    EXPECT_THROW_WITH((t.as<std::pair<int, int>>()), mp::TypeError, "tuple of 3 items, not a tuple of 2");
    EXPECT_THROW_WITH((Object::list({1, "x"}).as<std::vector<int>>()), mp::TypeError, "not an int");
    Object s = std::set<int>{3, 1, 2};
    EXPECT_EQ(mp::repr(s), "{1, 2, 3}");
    EXPECT_EQ(s.as<std::set<int>>(), (std::set<int>{1, 2, 3}));
    EXPECT_THROW_WITH(s.as<std::vector<int>>(), mp::TypeError, "holds a set ({1, 2, 3}), not a list");
}

TEST(ObjectModel, CopiesAreValuesEvenWhenNested) {
    Object a = Object::dict({{"l", Object::list({1})}});
    Object b = a;
    b["l"].append(2);
    b["new"] = true;
    EXPECT_EQ(mp::repr(a), "{'l': [1]}");
    EXPECT_EQ(mp::repr(b), "{'l': [1, 2], 'new': True}");
    Object inner = b["l"];
    inner.clear();
    EXPECT_EQ(b["l"].size(), 2u);
}

TEST(ObjectModel, SeedTwosDictAndListPrintAsPythonPrintsThem) {
    Object d = Object::dict();
    d[1] = "1";
    d["2"] = 2;
    d[0.25] = mp::None;
    Object l = Object::list();
    for (int i = 0; i < 10; ++i) l.append(i);
    l.reverse();
    std::ostringstream out;
    out << d << '\n' << l;
    EXPECT_EQ(out.str(), "{1: '1', '2': 2, 0.25: None}\n[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
}

TEST(ObjectModel, EqualNumbersAreOneDictKeyAndTheFirstKeyStays) {
    Object d = Object::dict({{true, 1}, {1.0, 2}, {1, 3}});
    EXPECT_EQ(mp::repr(d), "{True: 3}");
    EXPECT_EQ(Object(1), Object(1.0));
    EXPECT_EQ(Object(1), Object(true));
    EXPECT_NE(Object(1), Object("1"));
    EXPECT_NE(Object((std::int64_t{1} << 53) + 1), Object(static_cast<double>(std::int64_t{1} << 53)));
    EXPECT_NE(Object(std::nan("")), Object(std::nan("")));
    EXPECT_NE(Object::list({1}), Object::tuple({1}));
    EXPECT_EQ(Object::dict({{1, 2}, {3, 4}}), Object::dict({{3, 4}, {1, 2}}));
    EXPECT_EQ(Object::set({1, 2}), Object::set({2, 1.0}));
    EXPECT_EQ(std::hash<Object>{}(Object(2)), std::hash<Object>{}(Object(2.0)));
    EXPECT_THROW_WITH(Object::dict()[Object::list()], mp::TypeError, "unhashable type: 'list'");
    EXPECT_THROW_WITH(Object::set({Object::dict()}), mp::TypeError, "unhashable type: 'dict'");
    EXPECT_THROW_WITH(Object::tuple({1, Object::set()}).hash(), mp::TypeError, "unhashable type: 'set'");
}

TEST(ObjectModel, ReprAndHashMatchPython) {
    std::vector<Case> cases = {
        {Object(), "None"},
        {true, "True"},
        {false, "False"},
        {0, "0"},
        {-1, "-1"},
        {std::numeric_limits<std::int64_t>::max(), "2**63-1"},
        {std::numeric_limits<std::int64_t>::min(), "-2**63"},
        {std::int64_t{1} << 61, "2**61"},
        {-(std::int64_t{1} << 61), "-2**61"},
        {(std::int64_t{1} << 61) - 1, "2**61-1"},
        {"", "''"},
        {"it's", "\"it's\""},
        {"both ' and \"", "'both \\' and \"'"},
        {"tab\there\nnl\r\\ \x01\x1f\x7f", "'tab\\there\\nnl\\r\\\\ \\x01\\x1f\\x7f'"},
        {mp::Bytes{}, "b''"},
        {mp::Bytes{0, 9, 10, 13, 39, 92, 127, 128, 255, 65}, "bytes([0, 9, 10, 13, 39, 92, 127, 128, 255, 65])"},
        {mp::Bytes(std::string_view("it's")), "b\"it's\""},
        {Object::tuple(), "()"},
        {Object::tuple({1}), "(1,)"},
        {Object::tuple({1, "a", Object::tuple({2.5, mp::None})}), "(1, 'a', (2.5, None))"},
        {Object::list({Object::list(), Object::dict(), Object::set(), Object::tuple()}), "[[], {}, set(), ()]"},
        {Object::dict({{Object::tuple({1, 2}), Object::list({1})}, {"k", mp::Bytes{1}}}),
         "{(1, 2): [1], 'k': b'\\x01'}"},
    };
    // Floats: the exponent boundaries, the shortest-digit cases, and random bit patterns.
    for (double x : {0.0,
                     -0.0,
                     1.0,
                     -1.5,
                     0.1,
                     0.2 + 0.1,
                     1e16,
                     1e15,
                     9999999999999998.0,
                     1e-4,
                     1e-5,
                     0.00012345,
                     1.5e-5,
                     1e22,
                     1e23,
                     5e-324,
                     1.7976931348623157e308,
                     2.0 / 3,
                     123456789.125,
                     std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()})
        cases.push_back({x, py_float(x)});
    std::mt19937_64 rng(20261207);
    for (int k = 0; k < 300; ++k) {
        double x;
        const std::uint64_t bits = rng();
        std::memcpy(&x, &bits, sizeof x);
        if (std::isnan(x)) continue;
        cases.push_back({x, py_float(x)});
        const double small = static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000) / 64;
        cases.push_back({small, py_float(small)});
    }
    for (int k = 0; k < 200; ++k) {
        const auto i = static_cast<std::int64_t>(rng());
        cases.push_back({i, std::to_string(i)});
    }
    for (int k = 0; k < 50; ++k) {
        const auto i = static_cast<std::int64_t>(rng() % 1000);
        const double f = static_cast<double>(rng() % 1000) / 8;
        cases.push_back(
            {Object::tuple({i, f, k % 2 == 0, mp::None}),
             "(" + std::to_string(i) + ", " + py_float(f) + ", " + (k % 2 == 0 ? "True" : "False") + ", None)"});
    }
    expect_python_agrees(cases, true);
}

TEST(ObjectModel, StrReprEscapesExactlyWhatPythonEscapes) {
    // Every code point class: ASCII controls, Latin-1 (NBSP and the soft hyphen are not printable),
    // BMP letters and unassigned points, separators, surrogate-adjacent points, astral emoji,
    // private use and unassigned planes.
    const std::vector<std::vector<char32_t>> texts = {
        {0x00, 0x07, 0x1b, 0x7f, 0x80, 0x9f},
        {0xa0, 0xa1, 0xad, 0xe9, 0xff},
        {0x100, 0x378, 0x3a9, 0x5d0, 0x600, 0x61c, 0x2028, 0x2029, 0x200b, 0x200d},
        {0x3000, 0x4e2d, 0xd7ff, 0xe000, 0xf8ff, 0xfeff, 0xfffd, 0xfffe, 0xffff},
        {0x10000, 0x1f600, 0x1f3f3, 0xe0001, 0xe0100, 0xf0000, 0x10fffd, 0x10ffff},
        {'\'', 'a', '"'},
        {'\''},
    };
    std::vector<Case> cases;
    for (const auto& t : texts) cases.push_back({utf8(t), py_str(t)});
    // And a sweep: every 97th code point below 0x30000 outside the surrogates.
    std::vector<char32_t> sweep;
    for (char32_t c = 0x20; c < 0x30000; c += 97)
        if (c < 0xd800 || c > 0xdfff) sweep.push_back(c);
    for (std::size_t k = 0; k < sweep.size(); k += 64)
        cases.push_back({utf8({sweep.begin() + static_cast<std::ptrdiff_t>(k),
                               sweep.begin() + static_cast<std::ptrdiff_t>(std::min(k + 64, sweep.size()))}),
                         py_str({sweep.begin() + static_cast<std::ptrdiff_t>(k),
                                 sweep.begin() + static_cast<std::ptrdiff_t>(std::min(k + 64, sweep.size()))})});
    expect_python_agrees(cases, false);
}

TEST(ObjectModel, ASetOfNumbersIteratesInCPythonsOrderAfterTheSameAddsAndDiscards) {
    std::mt19937_64 rng(7);
    std::vector<Case> cases;
    for (int round = 0; round < 40; ++round) {
        Object s = Object::set();
        std::string ops = "s = set()\n";
        std::string python = "(lambda s: ([";
        const int n = 5 + round * 3;
        for (int k = 0; k < n; ++k) {
            const bool as_float = rng() % 4 == 0;
            const auto v = static_cast<std::int64_t>(rng() % (round % 2 ? 1000 : 40)) - (round % 3 ? 0 : 500);
            const Object item = as_float ? Object(static_cast<double>(v) + 0.5) : Object(v);
            const std::string item_py = as_float ? py_float(static_cast<double>(v) + 0.5) : std::to_string(v);
            if (rng() % 3 == 0) {
                s.discard(item);
                python += "s.discard(" + item_py + "),";
            } else {
                s.add(item);
                python += "s.add(" + item_py + "),";
            }
        }
        python += "], s)[1])(set())";
        cases.push_back({s, python});
    }
    expect_python_agrees(cases, false);
    // pop() takes from where the last one stopped, as CPython's does: `s = {5, 3, 9, 1};
    // [s.pop() for _ in range(4)]` is [9, 3, 5, 1] (1 collides with 9 and lands last).
    Object s = Object::set({5, 3, 9, 1});
    std::vector<std::int64_t> popped;
    while (s.size()) popped.push_back(s.pop().as_int());
    EXPECT_EQ(popped, (std::vector<std::int64_t>{9, 3, 5, 1}));
    EXPECT_THROW_WITH(s.pop(), mp::KeyError, "'pop from an empty set'");
}

TEST(ObjectModel, OrderingFollowsPythonAndUnorderableMixesRaiseItsTypeError) {
    EXPECT_TRUE(Object(1) < Object(1.5));
    EXPECT_TRUE(Object(false) < Object(1));
    EXPECT_TRUE(Object("a") < Object("b"));
    EXPECT_TRUE(Object(utf8({0xe9})) > Object("z"));  // code point order
    EXPECT_TRUE(Object::tuple({1, 2}) < Object::tuple({1, 2, 0}));
    EXPECT_TRUE(Object::list({1, "b"}) < Object::list({2, 0}));  // decided by the first items
    EXPECT_TRUE(Object::set({1}) < Object::set({1, 2}));
    EXPECT_FALSE(Object::set({1, 3}) <= Object::set({1, 2}));
    EXPECT_FALSE(Object(std::nan("")) < Object(1));
    EXPECT_TRUE(Object(std::numeric_limits<std::int64_t>::max()) < Object(9223372036854775808.0));

    // The messages, from Python itself.
    const std::vector<std::pair<std::pair<Object, Object>, std::string>> pairs = {
        {{1, "a"}, "1 < 'a'"},
        {{"a", 1}, "'a' <= 1"},
        {{mp::None, mp::None}, "None > None"},
        {{Object::dict(), Object::dict()}, "{} >= {}"},
        {{Object::list(), Object::tuple()}, "[] < ()"},
        {{Object::tuple({1, "x"}), Object::tuple({1, 2})}, "(1, 'x') < (1, 2)"},
        {{mp::Bytes{}, ""}, "b'' < ''"},
    };
    std::string input;
    for (const auto& [values, expr] : pairs) input += "repr " + expr + "\n";
    const auto lines = python_output(POLYPROC_TEST_PYTHON, kEvalScript, input);
    ASSERT_EQ(lines.size(), pairs.size());
    const auto ops = std::vector<std::function<bool(const Object&, const Object&)>>{
        [](const Object& a, const Object& b) { return a < b; }, [](const Object& a, const Object& b) { return a <= b; },
        [](const Object& a, const Object& b) { return a > b; }, [](const Object& a, const Object& b) { return a >= b; },
        [](const Object& a, const Object& b) { return a < b; }, [](const Object& a, const Object& b) { return a < b; },
        [](const Object& a, const Object& b) { return a < b; }};
    for (std::size_t k = 0; k < pairs.size(); ++k) {
        const auto& [a, b] = pairs[k].first;
        EXPECT_EQ("TypeError: " + message_of<mp::TypeError>([&] { ops[k](a, b); }), lines[k]) << pairs[k].second;
    }
}

TEST(ObjectModel, ListOperationsAndTheirErrorsAreLists) {
    Object l = Object::list({3, 1, 2});
    l.append("x");
    l.insert(0, 0);
    l.insert(-100, -1);
    l.insert(100, 9);
    EXPECT_EQ(mp::repr(l), "[-1, 0, 3, 1, 2, 'x', 9]");
    EXPECT_EQ(l.pop().as_int(), 9);
    EXPECT_EQ(l.pop(0).as_int(), -1);
    EXPECT_EQ(l[-1].as_str(), "x");
    l.remove("x");
    EXPECT_EQ(l.index(2), 3u);
    EXPECT_EQ(l.count(1), 1u);
    l.sort();
    EXPECT_EQ(mp::repr(l), "[0, 1, 2, 3]");
    l.sort(true);
    EXPECT_EQ(mp::repr(l), "[3, 2, 1, 0]");
    l.extend(Object::tuple({7, 8}));
    l.extend(l);
    EXPECT_EQ(l.size(), 12u);
    l[0] = "first";
    l.erase(-1);
    EXPECT_EQ(mp::repr(l), "['first', 2, 1, 0, 7, 8, 3, 2, 1, 0, 7]");
    EXPECT_TRUE(l.contains(7) && !l.contains(70));

    EXPECT_THROW_WITH(l[100], mp::IndexError, "list index out of range");
    EXPECT_THROW_WITH(Object::tuple()[0], mp::IndexError, "tuple index out of range");
    EXPECT_THROW_WITH(l["a"], mp::TypeError, "list indices must be integers or slices, not str");
    EXPECT_THROW_WITH(l.remove(99), mp::ValueError, "list.remove(x): x not in list");
    EXPECT_THROW_WITH(l.index(99), mp::ValueError, "99 is not in list");
    EXPECT_THROW_WITH(l.erase(50), mp::IndexError, "list assignment index out of range");
    EXPECT_THROW_WITH(Object::list().pop(), mp::IndexError, "pop from empty list");
    EXPECT_THROW_WITH(Object(1).append(2), mp::AttributeError, "'int' object has no attribute 'append'");
    EXPECT_THROW_WITH(Object(1)[0], mp::TypeError, "'int' object is not subscriptable");
    EXPECT_THROW_WITH(Object(1).size(), mp::TypeError, "object of type 'int' has no len()");
    EXPECT_THROW_WITH(Object(1).begin(), mp::TypeError, "'int' object is not iterable");
    Object mixed = Object::list({1, "a"});
    EXPECT_THROW_WITH(mixed.sort(), mp::TypeError, "'<' not supported between instances of 'str' and 'int'");
    EXPECT_EQ(mp::repr(mixed), "[1, 'a']");  // a failed sort leaves the list as it was
}

TEST(ObjectModel, ReferencesIntoADictSurviveInsertsAndNeverReachACopy) {
    Object d = Object::dict({{"y", "why"}});
    for (int i = 0; i < 200; ++i) d[std::to_string(i)] = d["y"];  // inserts move nothing d["y"] refers to
    EXPECT_EQ(d.at("199").as_str(), "why");
    Object& r = d["k"];
    Object copy = d;
    r = 1;
    EXPECT_EQ(d.at("k").as_int(), 1);
    EXPECT_TRUE(copy.at("k").is_none()) << "writing through a reference reached a copy";
}

TEST(ObjectModel, DictOperationsKeepInsertionOrderAndRaiseKeyError) {
    Object d = Object::dict();
    for (int i = 0; i < 100; ++i) d[i] = i * i;
    for (int i = 0; i < 100; i += 2) d.erase(i);
    d[0] = "back";
    EXPECT_EQ(d.size(), 51u);
    EXPECT_EQ(d.keys().front().as_int(), 1);
    EXPECT_EQ(d.keys().back().as_int(), 0);
    EXPECT_EQ(d.at(99).as_int(), 9801);
    EXPECT_EQ(d.get(2).type(), Object::Type::none);
    EXPECT_EQ(d.get(2, "dflt").as_str(), "dflt");
    EXPECT_EQ(d.setdefault(3, 5).as_int(), 9);
    EXPECT_EQ(d.setdefault("new", 5).as_int(), 5);
    EXPECT_EQ(d.pop("new").as_int(), 5);
    EXPECT_EQ(d.pop("gone", 7).as_int(), 7);
    const auto [k, v] = d.popitem();
    EXPECT_EQ(k.as_int(), 0);
    EXPECT_EQ(v.as_str(), "back");
    d.update(Object::list({Object::tuple({"u", 1}), Object::list({"w", 2})}));
    d.update(Object::dict({{"u", 10}}));
    EXPECT_EQ(d.at("u").as_int(), 10);
    EXPECT_EQ(d.values().back().as_int(), 2);
    std::size_t n = 0;
    for (const Object& key : d) n += d.contains(key);
    EXPECT_EQ(n, d.size());

    const Object& frozen = d;
    EXPECT_THROW_WITH(frozen["missing"], mp::KeyError, "'missing'");
    EXPECT_THROW_WITH(d.at(Object::tuple({1, "x"})), mp::KeyError, "(1, 'x')");
    EXPECT_THROW_WITH(d.erase(1000), mp::KeyError, "1000");
    EXPECT_THROW_WITH(d.pop(1000), mp::KeyError, "1000");
    EXPECT_THROW_WITH(Object::dict().popitem(), mp::KeyError, "'popitem(): dictionary is empty'");
    EXPECT_THROW_WITH(d.update(Object::list({Object::tuple({1, 2, 3})})), mp::ValueError,
                      "dictionary update sequence element #0 has length 3; 2 is required");
    EXPECT_EQ(d["missing"].type(), Object::Type::none);  // the non-const [] inserts, as std::map's
    EXPECT_TRUE(d.contains("missing"));
    d.clear();
    EXPECT_EQ(mp::repr(d), "{}");
}

TEST(ObjectModel, IterationYieldsWhatPythonsIterDoes) {
    std::vector<std::string> chars;
    for (const Object& c : Object(utf8({'a', 0xe9, 0x1f600}))) chars.push_back(c.as_str());
    EXPECT_EQ(chars, (std::vector<std::string>{"a", utf8({0xe9}), utf8({0x1f600})}));
    std::vector<std::int64_t> bytes;
    for (const Object& b : Object(mp::Bytes{1, 200})) bytes.push_back(b.as_int());
    EXPECT_EQ(bytes, (std::vector<std::int64_t>{1, 200}));
    Object s = Object::set({"x"});
    EXPECT_EQ(std::distance(s.begin(), s.end()), 1);
    EXPECT_TRUE(Object("abc").contains("bc"));
    EXPECT_THROW_WITH(Object("abc").contains(1), mp::TypeError,
                      "'in <string>' requires string as left operand, not int");
    EXPECT_FALSE(Object::list().truthy());
    EXPECT_TRUE(Object::tuple({mp::None}).truthy());
}

// ---- pickle ---------------------------------------------------------------------------------------

namespace {

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : bytes) {
        out += digits[static_cast<unsigned char>(c) >> 4];
        out += digits[static_cast<unsigned char>(c) & 0xf];
    }
    return out;
}
std::string unhex(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2)
        out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
    return out;
}
// wire.md writes bytes as spaced hex ("80 04 4e 2e").
std::string spaced(std::string_view text) {
    std::string compact;
    for (char c : text)
        if (c != ' ') compact += c;
    return unhex(compact);
}

// Lines "dump <proto> <expr>" print pickle.dumps(eval(expr), proto) in hex; "load <hex>" prints
// repr(pickle.loads(bytes)).
const char* kPickleScript = R"(
import pickle, sys
for line in sys.stdin:
    kind, rest = line.rstrip('\n').split(' ', 1)
    try:
        if kind == 'dump':
            proto, expr = rest.split(' ', 1)
            print(pickle.dumps(eval(expr), int(proto)).hex())
        else:
            print(repr(pickle.loads(bytes.fromhex(rest))))
    except Exception as e:
        print(type(e).__name__ + ': ' + str(e))
)";

// Values whose Python spelling has no repeated str, bytes or tuple (Python would share those
// constants and memoize the second one, which an Object cannot).
std::vector<Case> pickle_corpus() {
    std::vector<Case> cases = {
        {Object(), "None"},
        {true, "True"},
        {0, "0"},
        {255, "255"},
        {256, "256"},
        {65535, "65535"},
        {65536, "65536"},
        {-1, "-1"},
        {std::int64_t{1} << 31, "2**31"},
        {-(std::int64_t{1} << 31) - 1, "-2**31-1"},
        {std::numeric_limits<std::int64_t>::max(), "2**63-1"},
        {std::numeric_limits<std::int64_t>::min(), "-2**63"},
        {128, "128"},
        {-129, "-129"},
        {1.5, "1.5"},
        {-0.0, "-0.0"},
        {utf8({0xe9}), py_str({0xe9})},
        {utf8({0x1f600, 'x'}), py_str({0x1f600, 'x'})},
        {mp::Bytes{1, 2, 255}, "bytes([1, 2, 255])"},
        {Object::tuple(), "()"},
        {Object::tuple({1}), "(1,)"},
        {Object::tuple({1, 2, 3, 4}), "(1, 2, 3, 4)"},
        {Object::list(), "[]"},
        {Object::list({1, 2}), "[1, 2]"},
        {Object::list({Object::list({7})}), "[[7]]"},
        {Object::dict({{"a", 1}, {"b", 2}}), "{'a': 1, 'b': 2}"},
        {Object::dict({{"k", Object::set({1, 2})}}), "{'k': {1, 2}}"},
        {Object::set(), "set()"},
        {Object::tuple({mp::None, "dummy", Object::tuple(), Object::dict()}), "(None, 'dummy', (), {})"},
        {Object::tuple({"#RETURN", mp::None}), "('#RETURN', None)"},
    };
    // Batches of 1000 and frames of 64 KiB.
    std::vector<Object> many;
    std::string many_py = "list(range(2500))";
    for (int i = 0; i < 2500; ++i) many.emplace_back(i);
    cases.push_back({Object::list(many), many_py});
    Object d = Object::dict();
    for (int i = 0; i < 1500; ++i) d[i * 7] = i;
    cases.push_back({d, "{i * 7: i for i in range(1500)}"});
    std::vector<Object> floats;
    for (int i = 0; i < 20000; ++i) floats.emplace_back(i + 0.25);
    cases.push_back({Object::list(floats), "[i + 0.25 for i in range(20000)]"});
    cases.push_back({std::string(70000, 'x'), "'x' * 70000"});
    cases.push_back(
        {Object::list({1, mp::Bytes(std::string_view(std::string(65536, 'y'))), 2}), "[1, b'y' * 65536, 2]"});
    return cases;
}

}  // namespace

TEST(ObjectPickle, WiresExamplesAreWrittenByteForByte) {
    EXPECT_EQ(mp::pickle_dumps(Object()), spaced("80 04 4e 2e"));
    EXPECT_EQ(mp::pickle_dumps(true), spaced("80 04 88 2e"));
    EXPECT_EQ(mp::pickle_dumps(1), spaced("80 04 4b 01 2e"));
    EXPECT_EQ(mp::pickle_dumps(256), spaced("80 04 95 04 00 00 00 00 00 00 00 4d 00 01 2e"));
    EXPECT_EQ(mp::pickle_dumps(-1), spaced("80 04 95 06 00 00 00 00 00 00 00 4a ff ff ff ff 2e"));
    EXPECT_EQ(mp::pickle_dumps(std::int64_t{1} << 31).substr(11), spaced("8a 05 00 00 00 80 00 2e"));
    EXPECT_EQ(mp::pickle_dumps(-(std::int64_t{1} << 31) - 1).substr(11), spaced("8a 05 ff ff ff 7f ff 2e"));
    EXPECT_EQ(mp::pickle_dumps(1.5), spaced("80 04 95 0a 00 00 00 00 00 00 00 47 3f f8 00 00 00 00 00 00 2e"));
    EXPECT_EQ(mp::pickle_dumps(utf8({0xe9})), spaced("80 04 95 06 00 00 00 00 00 00 00 8c 02 c3 a9 94 2e"));
    EXPECT_EQ(mp::pickle_dumps(Object::tuple()), spaced("80 04 29 2e"));
    EXPECT_EQ(mp::pickle_dumps(Object::tuple({1, 2, 3, 4})),
              spaced("80 04 95 0c 00 00 00 00 00 00 00 28 4b 01 4b 02 4b 03 4b 04 74 94 2e"));
    EXPECT_EQ(mp::pickle_dumps(Object::dict({{"a", 1}, {"b", 2}})),
              spaced("80 04 95 11 00 00 00 00 00 00 00 7d 94 28 8c 01 61 94 4b 01 8c 01 62 94 4b 02 75 2e"));
    // wire.md §3.2: FRAME is a hint; a pickle without it, or without PROTO, reads the same.
    EXPECT_EQ(mp::repr(mp::pickle_loads(spaced("80 04 28 4e 8c 05 64 75 6d 6d 79 29 7d 74 2e"))),
              "(None, 'dummy', (), {})");
    EXPECT_EQ(mp::repr(mp::pickle_loads(spaced("80 02 28 4e 8c 05 64 75 6d 6d 79 29 7d 74 2e"))),
              "(None, 'dummy', (), {})");
}

TEST(ObjectPickle, PythonReadsWhatWeWriteAndWritesWhatPythonWrites) {
    const auto cases = pickle_corpus();
    for (const auto& python : python_interpreters()) {
        std::string input;
        for (const auto& c : cases) input += "dump 4 " + c.python + "\n";
        for (const auto& c : cases) input += "load " + hex(mp::pickle_dumps(c.value)) + "\n";
        const auto lines = python_output(python, kPickleScript, input);
        ASSERT_EQ(lines.size(), 2 * cases.size()) << python;
        for (std::size_t k = 0; k < cases.size(); ++k) {
            // Our bytes are Python's, and Python reads ours back as the same value.
            EXPECT_EQ(hex(mp::pickle_dumps(cases[k].value)), lines[k]) << python << ": " << cases[k].python;
            EXPECT_EQ(mp::repr(cases[k].value), lines[cases.size() + k]) << python << ": " << cases[k].python;
        }
    }
}

TEST(ObjectPickle, ReadsEveryProtocolFromTwoToFive) {
    std::vector<Case> cases = pickle_corpus();
    cases.push_back({Object::set({1, 2, 3}), "frozenset({1, 2, 3})"});      // read as a set
    cases.push_back({mp::Bytes{97, 98}, "bytearray(b'ab')"});               // read as bytes
    cases.push_back({mp::Bytes{}, "b''"});
    cases.push_back({Object::list({5, 3, 1}), "range(5, 0, -2)"});  // read as a list
    cases.push_back({Object::list({"ab", "ab"}), "['ab'] * 2"});            // memoized and shared
    cases.push_back({Object::tuple({Object::list({1}), Object::list({1})}), "(lambda l: (l, l))([1])"});
    for (const auto& python : python_interpreters()) {
        const int newest = 5;
        std::string input;
        for (int proto = 2; proto <= newest; ++proto)
            for (const auto& c : cases) input += "dump " + std::to_string(proto) + " " + c.python + "\n";
        const auto lines = python_output(python, kPickleScript, input);
        ASSERT_EQ(lines.size(), cases.size() * static_cast<std::size_t>(newest - 1)) << python;
        std::size_t k = 0;
        for (int proto = 2; proto <= newest; ++proto)
            for (const auto& c : cases) {
                const std::string line = lines[k++];
                try {
                    EXPECT_EQ(mp::repr(mp::pickle_loads(unhex(line))), mp::repr(c.value))
                        << python << " protocol " << proto << ": " << c.python;
                } catch (const std::exception& e) {
                    ADD_FAILURE() << python << " protocol " << proto << ": " << c.python << ": " << e.what();
                }
            }
    }
}

TEST(ObjectPickle, BadPicklesAreUnpicklingErrorsSayingWhatAndWhere) {
    EXPECT_THROW_WITH(mp::pickle_loads(std::string_view()), mp::UnpicklingError, "it is empty");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 63 6f 73 0a 73 79 73 74 65 6d 0a 2e")), mp::UnpicklingError,
                      "it refers to os.system, which polyproc does not know");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 8a 09 00 00 00 00 00 00 00 00 01 2e")), mp::UnpicklingError,
                      "an int beyond the 64-bit ints");
    EXPECT_EQ(mp::pickle_loads(spaced("80 04 8a 09 ff ff ff ff ff ff ff ff ff 2e")).as_int(), -1);  // sign bytes only
    EXPECT_THROW_WITH(mp::pickle_loads(std::string_view("I1\n.")), mp::UnpicklingError, "opcode 0x49 is not one");
    // range(0, 2**62): refused, not allocated
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 8c 08 62 75 69 6c 74 69 6e 73 8c 05 72 61 6e 67 65 93 4b 00 8a 08 "
                                              "00 00 00 00 00 00 00 40 4b 01 87 52 2e")),
                      mp::UnpicklingError, "a range of more than 10000000 ints");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 68 05 2e")), mp::UnpicklingError, "memo entry 5 was never stored");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 4e 4e 2e")), mp::UnpicklingError, "STOP with 2 values");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 4e 2e 4e")), mp::UnpicklingError, "1 bytes follow STOP");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 58 ff ff ff 7f 61 2e")), mp::UnpicklingError, "runs past the end");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 4b 01 61 2e")), mp::UnpicklingError, "the stack is empty");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 4b 01 4b 02 61 2e")), mp::UnpicklingError,
                      "APPEND on something that is not a list");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 7d 28 5d 4b 01 75 2e")), mp::UnpicklingError,
                      "unhashable type: 'list'");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 8c 01 ff 2e")), mp::UnpicklingError, "not valid UTF-8");
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 09 4e 2e")), mp::UnpicklingError, "protocol 9");
    // A list that holds itself, as Python writes `l = []; l.append(l)`.
    EXPECT_THROW_WITH(mp::pickle_loads(spaced("80 04 5d 94 68 00 61 2e")), mp::UnpicklingError, "holds itself");
    // Nesting is bounded (the reader and the Object's destructor recurse).
    std::string deep = spaced("80 04");
    for (int i = 0; i < 5000; ++i) deep += spaced("5d 94");
    for (int i = 0; i < 4999; ++i) deep += spaced("61");
    deep += spaced("2e");
    EXPECT_THROW_WITH(mp::pickle_loads(deep), mp::UnpicklingError, "nest deeper than 1000");
    // Sharing cannot amplify: t0 = None, t(i+1) = (t(i), t(i)) doubles 64 times in 135 bytes; the
    // reader refuses it before anything hashes, prints or pickles it 2**64 times.
    std::string doubling = spaced("80 04 28 4e");
    for (int i = 0; i < 64; ++i) doubling += spaced("32 86");
    EXPECT_THROW_WITH(mp::pickle_loads(doubling + spaced("91 2e")), mp::UnpicklingError, "expands to more than");
    std::string doubled_tuple = spaced("80 04 4e");
    for (int i = 0; i < 64; ++i) doubled_tuple += spaced("32 86");
    EXPECT_THROW_WITH(mp::pickle_loads(doubled_tuple + spaced("2e")), mp::UnpicklingError, "expands to more than");
    // Nor can a memoized range() called again and again (5 bytes a call).
    std::string ranges = spaced(
        "80 04 28 8c 08 62 75 69 6c 74 69 6e 73 8c 05 72 61 6e 67 65 93 94 4b 00 4a 40 42 0f 00 "
        "4b 01 87 94 68 00 68 01 52");
    for (int i = 0; i < 20; ++i) ranges += spaced("68 00 68 01 52");
    EXPECT_THROW_WITH(mp::pickle_loads(ranges + spaced("74 2e")), mp::UnpicklingError, "values");
    // Values a reducer makes nest as deep as their arguments, and count against the bound too.
    std::string calls = spaced("80 04 8c 01 6d 8c 01 6e 93 94");
    for (int i = 0; i < 3000; ++i) calls += spaced("68 00");
    calls += spaced("4e");
    for (int i = 0; i < 3000; ++i) calls += spaced("85 52");
    const mp::detail::GlobalReducer wrap = [](const std::string&, const Object& args) { return Object::tuple({args}); };
    EXPECT_THROW_WITH(mp::detail::pickle_loads_with(calls + spaced("2e"), wrap), mp::UnpicklingError,
                      "nest deeper than 1000");
    // A list referenced many times is built once (the Object shares it).
    std::string wide = spaced("80 04 5d 94 28 5d 94 28");  // [[7, 7, ...], <the same list> * 4999]
    for (int i = 0; i < 1000; ++i) wide += spaced("4b 07");
    wide += spaced("65");
    for (int i = 0; i < 4999; ++i) wide += spaced("68 01");
    wide += spaced("65 2e");
    const Object big = mp::pickle_loads(wide);
    EXPECT_EQ(big.size(), 5000u);
    EXPECT_EQ(big[4999].size(), 1000u);
}

TEST(ObjectPickle, EveryTruncationAndRandomDamageIsAnUnpicklingErrorNeverACrash) {
    const auto cases = pickle_corpus();
    std::mt19937_64 rng(99);
    std::size_t damaged_read = 0;
    for (const auto& c : cases) {
        const std::string good = mp::pickle_dumps(c.value);
        if (good.size() > 4096) continue;
        for (std::size_t n = 0; n < good.size(); ++n)
            EXPECT_THROW(mp::pickle_loads(std::string_view(good).substr(0, n)), mp::UnpicklingError)
                << c.python << " cut at " << n;
        for (int k = 0; k < 200; ++k) {
            std::string bad = good;
            for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips)
                bad[rng() % bad.size()] = static_cast<char>(rng());
            try {
                mp::pickle_loads(bad);
                ++damaged_read;  // a flip can leave a valid pickle of another value
            } catch (const mp::UnpicklingError&) {
            }
        }
    }
    EXPECT_LT(damaged_read, cases.size() * 200);
}

namespace {
struct Marker : mp::ObjectAttachment {
    explicit Marker(int* alive) : alive_(alive) { ++*alive_; }
    ~Marker() override { --*alive_; }
    int* alive_;
};
}  // namespace

TEST(ObjectModel, AnInstanceIsItselfOnlyAndCarriesItsAttachmentWithItsCopies) {
    int alive = 0;
    {
        const Object a = Object::instance("polyproc", "Proxy", Object::tuple({"list", "/tmp/x", "1f"}),
                                          std::make_shared<Marker>(&alive));
        EXPECT_EQ(a.type(), Object::Type::instance);
        EXPECT_STREQ(a.type_name(), "Proxy");
        EXPECT_EQ(mp::repr(a), "<polyproc.Proxy('list', '/tmp/x', '1f')>");
        Object copy = a;
        EXPECT_EQ(copy, a);
        EXPECT_EQ(copy.hash(), a.hash());
        const Object same = Object::instance("polyproc", "Proxy", Object::tuple({"list", "/tmp/x", "1f"}));
        EXPECT_EQ(same, a) << "equal by class and args";
        EXPECT_EQ(same.hash(), a.hash());
        const Object other = Object::instance("polyproc", "Proxy", Object::tuple({"list", "/tmp/x", "20"}));
        EXPECT_NE(other, a);
        EXPECT_TRUE(a.truthy());
        Object d = Object::dict({{a, 1}});
        EXPECT_EQ(d[same], 1);
        EXPECT_THROW(a.size(), mp::TypeError);
        EXPECT_THROW_WITH((void)(a < other), mp::TypeError, "'<' not supported");
        EXPECT_THROW_WITH(Object(1).instance_args(), mp::TypeError, "not an instance");
        Object holder = Object::list({a});
        holder.append(2);  // a copied body still shares the attachment
        EXPECT_EQ(alive, 1);

        // Pickled as module.name(*args); read back without the attachment, which is this process's.
        const std::string bytes = mp::pickle_dumps(a);
        const Object back = mp::pickle_loads(bytes);
        EXPECT_EQ(back.instance_module(), "polyproc");
        EXPECT_EQ(back.instance_name(), "Proxy");
        EXPECT_EQ(back.instance_args(), a.instance_args());
        EXPECT_EQ(back.instance_attachment(), nullptr);
        // Python reads it as that call (here with a stand-in module named polyproc).
        const auto python = python_output(python_interpreters().front(),
                                          "import pickle, sys, types\n"
                                          "m = types.ModuleType('polyproc')\n"
                                          "m.Proxy = lambda *a: ('Proxy',) + a\n"
                                          "sys.modules['polyproc'] = m\n"
                                          "print(pickle.loads(bytes.fromhex(sys.stdin.readline())))\n",
                                          hex(bytes) + "\n");
        EXPECT_EQ(python, (std::vector<std::string>{"('Proxy', 'list', '/tmp/x', '1f')"}));
        // A class other than polyproc's is still refused.
        EXPECT_THROW_WITH(mp::pickle_loads(std::string_view("\x80\x04\x8c\x02os\x8c\x06system\x93)R.")),
                          mp::UnpicklingError, "os.system");
    }
    EXPECT_EQ(alive, 0) << "the attachment goes with the instance's last copy";
}

namespace {
struct Point {
    int x = 0, y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(x, y, label);
    }
    friend bool operator==(const Point&, const Point&) = default;
};
struct Other {
    double z = 0;
};
}  // namespace

TEST(ObjectModel, AnySerializableTypeIsAnOpaqueNativeInstance) {
    const Point p{1, 2, "a"};
    const Object o(p);  // explicit: a Native never converts behind one's back
    static_assert(!std::is_convertible_v<Point, Object>);
    EXPECT_EQ(o.type(), Object::Type::instance);
    EXPECT_EQ(o.instance_name(), "Native");
    EXPECT_EQ(o.as<Point>(), p);
    EXPECT_EQ(mp::pickle_loads(mp::pickle_dumps(o)).as<Point>(), p) << "through its pickle";
    EXPECT_EQ(Object(Point{1, 2, "a"}), o) << "equal bytes, equal values";
    EXPECT_EQ(Object::dict({{o, 1}})[Object(p)], 1);
    const auto points = Object(std::vector<Point>{p, {3, 4, "b"}});
    EXPECT_EQ(points.size(), 2u);
    EXPECT_EQ(points.as<std::vector<Point>>()[1].label, "b");
    EXPECT_THROW(o.as<Other>(), mp::DecodeError) << "another type's bytes are refused";
    EXPECT_THROW_WITH(Object(3).as<Point>(), mp::TypeError, "not a");
}

TEST(ObjectPickle, AnObjectTravelsThroughTheCodec) {
    const Object value = Object::dict({{1, "1"}, {"2", 2}, {0.25, mp::None}, {"l", Object::list({1, mp::Bytes{0}})}});
    static_assert(mp::Serializable<Object>);
    const auto bytes = mp::dumps(value);
    EXPECT_EQ(mp::loads<Object>(bytes), value);
    EXPECT_EQ(mp::repr(mp::loads<Object>(bytes)), "{1: '1', '2': 2, 0.25: None, 'l': [1, b'\\x00']}");
    auto [a, b] = mp::Pipe();
    a.send(value);
    EXPECT_EQ(b.recv<Object>(), value);
    a.send(std::vector<Object>{1, "x"});
    EXPECT_EQ(mp::repr(Object(b.recv<std::vector<Object>>())), "[1, 'x']");
}

// A NaN key equals nothing, itself included, so a dict holding one prints by its entries, not by
// looking each key up again (found by fuzz/pickle_loads_fuzzer: repr threw KeyError(nan)).
TEST(ObjectRepr, ADictWithANanKeyPrints) {
    mp::Object d = mp::Object::dict();
    d[std::numeric_limits<double>::quiet_NaN()] = mp::Object::tuple();
    d["k"] = 1;
    EXPECT_EQ(mp::repr(d), "{nan: (), 'k': 1}");
    EXPECT_EQ(mp::str(d), "{nan: (), 'k': 1}");
}

// Python decodes a GLOBAL's module and name as UTF-8; so does the reader (found by
// fuzz/pickle_loads_fuzzer: a polyproc class named with bytes that are not UTF-8 was read, and
// could not be written again).
TEST(ObjectPickle, AGlobalNameMustBeUtf8) {
    const std::string bad =
        "\x80\x02"
        "cpolyproc.\xff\nProxy\n)R.";
    EXPECT_THROW_WITH(mp::pickle_loads(bad), mp::UnpicklingError, "GLOBAL name that is not valid UTF-8");
}
