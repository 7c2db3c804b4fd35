// The manager protocol's compact encoding (src/manager_compact.hpp): every value a request or reply
// carries reads back equal, the protocol's readers take it beside pickles, and hostile bytes are a
// ProtocolError, never a crash, a hang or an allocation the input does not pay for.
#include <random>

#include "manager_compact.hpp"
#include "manager_protocol.hpp"
#include "support.hpp"

namespace mp = polyproc;
using mp::Object;
namespace wire = mp::detail::manager;

namespace {

// Values of every type, with the edges of each.
std::vector<Object> corpus() {
    std::vector<Object> values = {
        mp::None,
        true,
        false,
        0,
        1,
        -1,
        63,
        -64,
        64,
        std::numeric_limits<std::int64_t>::max(),
        std::numeric_limits<std::int64_t>::min(),
        0.0,
        -0.0,
        1.5,
        std::numeric_limits<double>::infinity(),
        "",
        "text",
        "naïve \xf0\x9f\x90\x8d",
        std::string(300, 'x'),  // a length past one varint byte
        Object(mp::Bytes(std::string("\0\xff\x80", 3))),
        Object::tuple(),
        Object::tuple({1, "2", 3.0}),
        Object::list({Object::list({}), Object::dict({{"k", Object::set({1, 2})}})}),
        Object::dict({{1, "1"}, {"2", 2}, {0.25, mp::None}}),
        Object::set({Object::tuple({1, 2}), "a"}),
        Object::instance("polyproc", "Native", Object::tuple({"Reading", Object(mp::Bytes("abc"))})),
    };
    Object big = Object::list();
    for (int i = 0; i < 2000; ++i) big.append(i * 1'000'003);
    values.push_back(big);
    return values;
}

std::string request_of(const Object& value) {
    return *wire::compact::encode_request("7f01", "__setitem__", Object::tuple({value, value}),
                                          Object::dict({{"k", value}}));
}

}  // namespace

TEST(ManagerCompact, EveryValueReadsBackEqualInRequestsAndReplies) {
    for (const Object& value : corpus()) {
        SCOPED_TRACE(mp::repr(value).substr(0, 80));
        const auto request = wire::decode_request(request_of(value));  // through the protocol's reader
        EXPECT_EQ(request.encoding, wire::Encoding::compact);
        EXPECT_EQ(request.ident, Object("7f01"));
        EXPECT_EQ(request.method, "__setitem__");
        EXPECT_EQ(mp::repr(request.args), mp::repr(Object::tuple({value, value})));
        EXPECT_EQ(mp::repr(request.kwds), mp::repr(Object::dict({{"k", value}})));
        const auto reply = wire::decode_reply(wire::encode_return(value, wire::Encoding::compact));
        EXPECT_EQ(reply.kind, "#RETURN");
        EXPECT_EQ(mp::repr(reply.value), mp::repr(value));
    }
    const Object nan = wire::decode_reply(wire::encode_return(std::nan(""), wire::Encoding::compact)).value;
    EXPECT_TRUE(std::isnan(nan.as_float()));
    EXPECT_TRUE(std::signbit(wire::decode_reply(wire::encode_return(-0.0, wire::Encoding::compact)).value.as_float()));
}

TEST(ManagerCompact, ErrorsTracebacksAndProxyRepliesReadBack) {
    const auto error = wire::decode_reply(
        wire::encode_error(wire::RaisedError{"builtins", "KeyError", Object::tuple({"k"})}, wire::Encoding::compact));
    ASSERT_EQ(error.kind, "#ERROR");
    EXPECT_EQ(error.error->module, "builtins");
    EXPECT_EQ(error.error->name, "KeyError");
    EXPECT_EQ(mp::repr(error.error->args), "('k',)");
    EXPECT_THROW(wire::raise_reply_error(error, "here"), mp::KeyError);

    const auto traceback = wire::decode_reply(wire::encode_traceback("AssertionError: x", wire::Encoding::compact));
    EXPECT_EQ(traceback.kind, "#TRACEBACK");
    EXPECT_EQ(traceback.value, Object("AssertionError: x"));

    const auto proxy = wire::decode_reply(
        wire::encode_proxy_reply(Object::tuple({"f"}), "Tree", Object("/tmp/x"), "7f", wire::Encoding::compact));
    ASSERT_EQ(proxy.kind, "#PROXY");
    EXPECT_EQ(proxy.token->type_id, "Tree");
    EXPECT_EQ(proxy.token->ident, "7f");
}

TEST(ManagerCompact, AProxyInAValueIsMadeByTheReadersMaker) {
    const Object args = Object::tuple({"dict", "/tmp/m", "7f02"});
    const std::string bytes = request_of(wire::proxy_object(args));
    int made = 0;
    const auto request = wire::decode_request(bytes, [&](const Object& a) {
        ++made;
        EXPECT_EQ(a, args);
        return wire::proxy_object(a);
    });
    EXPECT_EQ(made, 3);  // each of the three places it appears
    EXPECT_TRUE(wire::is_proxy_object(request.args[0]));
    // Any other class is left to the pickle, whose reader refuses it (the compact reader would too).
    const Object system = Object::instance("os", "system", Object::tuple({"true"}));
    EXPECT_FALSE(wire::compact::encode_request("7f01", "f", Object::tuple({system}), Object::dict()).has_value());
    try {
        wire::decode_request(wire::encode_request(Object("7f01"), "f", Object::tuple({system}), Object::dict(),
                                                  wire::Encoding::compact));
        ADD_FAILURE() << "an unknown class was read";
    } catch (const mp::UnpicklingError& e) {
        EXPECT_NE(std::string(e.what()).find("os.system"), std::string::npos) << e.what();
    }
}

TEST(ManagerCompact, AValueNestedTooDeepIsPickledInstead) {
    Object deep = Object::list();
    for (int i = 0; i < 1100; ++i) deep = Object::list({deep});
    EXPECT_FALSE(wire::compact::encode_return(deep).has_value());
    const std::string bytes = wire::encode_return(deep, wire::Encoding::compact);
    EXPECT_FALSE(wire::compact::is_reply(bytes)) << "fell back to a pickle";
}

TEST(ManagerCompact, EveryTruncationIsAProtocolError) {
    for (const Object& value : corpus()) {
        const std::string bytes = request_of(value);
        for (std::size_t n = 1; n < bytes.size(); ++n)
            EXPECT_THROW(wire::decode_request(std::string_view(bytes).substr(0, n)), wire::ProtocolError)
                << "cut at " << n << " of " << mp::repr(value).substr(0, 40);
        EXPECT_THROW(wire::decode_request(bytes + "x"), wire::ProtocolError) << "a byte after the message";
        const std::string reply = wire::encode_return(value, wire::Encoding::compact);
        for (std::size_t n = 1; n < reply.size(); ++n)
            EXPECT_THROW(wire::decode_reply(std::string_view(reply).substr(0, n)), wire::ProtocolError);
    }
}

TEST(ManagerCompact, CorruptBytesAreAProtocolErrorOrAValueNeverACrash) {
    std::mt19937 random(20261207);
    int refused = 0, read = 0;
    for (const Object& value : corpus()) {
        const std::string bytes = request_of(value);
        for (int round = 0; round < 200; ++round) {
            std::string bad = bytes;
            const int flips = 1 + static_cast<int>(random() % 4);
            for (int f = 0; f < flips; ++f) bad[1 + random() % (bad.size() - 1)] = static_cast<char>(random() & 0xff);
            try {
                wire::decode_request(bad);
                ++read;
            } catch (const wire::ProtocolError&) {
                ++refused;
            }
        }
    }
    EXPECT_GT(refused, 0);
    EXPECT_GT(refused + read, 0);
}

TEST(ManagerCompact, HostileShapesAreRefusedByName) {
    const auto refused_for = [](const std::string& bytes) -> std::string {
        try {
            wire::decode_request(bytes);
        } catch (const wire::ProtocolError& e) {
            return e.what();
        }
        return "read";
    };
    using namespace std::string_literals;  // the pieces hold NULs
    const std::string head = "QN"s + "\x03"s + "get"s;  // ident None, method "get"
    // A count of 2^32 items in a few bytes: refused before anything is allocated.
    EXPECT_NE(refused_for(head + "t\x80\x80\x80\x80\x10"s).find("runs past the end"), std::string::npos);
    // A varint that never ends within 64 bits.
    EXPECT_NE(refused_for(head + "i"s + std::string(9, '\xff') + "\x7f"s).find("beyond 64 bits"), std::string::npos);
    // A str that is not UTF-8.
    EXPECT_NE(refused_for(head + "t\x01"s + "s\x01\xff"s + "d\x00"s).find("UTF-8"), std::string::npos);
    // An unhashable dict key.
    EXPECT_NE(refused_for(head + "t\x00"s + "d\x01"s + "l\x00"s + "N"s).find("unhashable"), std::string::npos);
    // Nesting past the bound, in a message of a few kilobytes.
    std::string nested = head;
    for (int i = 0; i < 5000; ++i) nested += "t\x01"s;
    EXPECT_NE(refused_for(nested + "N"s + "d\x00"s).find("nests deeper"), std::string::npos);
    // Nested counts that each claim the whole message: refused once the bytes run out, having
    // made room for no more than the bytes pay for (asan would see gigabytes otherwise).
    std::string claims = head;
    for (int i = 0; i < 1000; ++i) claims += "t\xe0\xd4\x03"s;  // 60 000 items each, 1 GB if made up front
    claims += std::string(61000, 'N');                          // what each count is checked against
    EXPECT_NE(refused_for(claims).find("truncated"), std::string::npos);
    // A method name that is not UTF-8.
    EXPECT_NE(refused_for("QN\x01\xff"s + "t\x00"s + "d\x00"s).find("UTF-8"), std::string::npos);
    // Args that are not a tuple; an unknown tag.
    EXPECT_NE(refused_for(head + "N"s + "d\x00"s).find("args must be a tuple"), std::string::npos);
    EXPECT_NE(refused_for(head + "?"s).find("unknown tag"), std::string::npos);
    EXPECT_THROW(wire::decode_reply("R?"), wire::ProtocolError);
}
