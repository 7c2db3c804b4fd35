// object.hpp: mp::Object against Python's data model. Where Python decides the answer (repr,
// hash, equality, ordering errors, a set's order) a real python3 is the oracle: the test builds
// each value in C++ and writes the same value as a Python expression, and Python prints what it
// makes of it.
#include <cstdio>
#include <random>

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
