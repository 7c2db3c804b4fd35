// The manager protocol's fast encoding (manager_compact.hpp).
#include "manager_compact.hpp"

#include <bit>
#include <cstring>

#include "pickle_opcodes.hpp"

namespace polyproc::detail::manager::compact {

namespace {

constexpr std::size_t kMaxDepth = pickle::kMaxDepth;  // what the pickle reader takes, too
constexpr std::size_t kReserveAtMost = 1024;              // items a count may make room for up front

class Writer {
public:
    Writer() { out_.reserve(64); }

    void tag(char t) { out_.push_back(t); }
    void varint(std::uint64_t v) {
        char b[10];
        int n = 0;
        for (; v >= 0x80; v >>= 7) b[n++] = static_cast<char>((v & 0x7f) | 0x80);
        b[n++] = static_cast<char>(v);
        out_.append(b, static_cast<std::size_t>(n));
    }
    void u64(std::uint64_t v) {
        char b[8];
        for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
        out_.append(b, 8);
    }
    void text(std::string_view t) {
        varint(t.size());
        out_.append(t);
    }

    // False for what this encoding does not carry.
    bool value(const Object& v, std::size_t depth = 0) {
        if (depth > kMaxDepth) return false;
        switch (v.type()) {
            case Object::Type::none:
                tag('N');
                return true;
            case Object::Type::boolean:
                tag(v.as_bool() ? 'T' : 'F');
                return true;
            case Object::Type::integer:
                tag('i');  // zigzag: small magnitudes of either sign take a byte or two
                varint((static_cast<std::uint64_t>(v.as_int()) << 1) ^ static_cast<std::uint64_t>(v.as_int() >> 63));
                return true;
            case Object::Type::floating:
                tag('f');
                u64(std::bit_cast<std::uint64_t>(v.as_float()));
                return true;
            case Object::Type::str:
                tag('s');
                text(v.as_str());
                return true;
            case Object::Type::bytes:
                tag('b');
                text(v.as_bytes().view());
                return true;
            case Object::Type::tuple:
            case Object::Type::list: {
                tag(v.type() == Object::Type::tuple ? 't' : 'l');
                const auto items = v.items_view();
                varint(items.size());
                for (const Object& item : items)
                    if (!value(item, depth + 1)) return false;
                return true;
            }
            case Object::Type::dict: {
                tag('d');
                varint(v.size());
                for (const auto& [key, item] : v.items())
                    if (!value(key, depth + 1) || !value(item, depth + 1)) return false;
                return true;
            }
            case Object::Type::set: {
                tag('S');
                varint(v.size());
                for (const Object& item : v)
                    if (!value(item, depth + 1)) return false;
                return true;
            }
            case Object::Type::instance:
                // polyproc's own classes only, which is what the reader takes (a slice is pickled)
                if (v.instance_module() != "polyproc") return false;
                tag('I');
                text(v.instance_module());
                text(v.instance_name());
                return value(v.instance_args(), depth + 1);
        }
        return false;
    }

    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class Reader {
public:
    Reader(std::string_view in, const ProxyMaker& make_proxy) : in_(in), make_proxy_(make_proxy) {}

    char tag() { return take(1)[0]; }
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            const auto b = static_cast<std::uint8_t>(take(1)[0]);
            if (shift == 63 && b > 1) fail("a number beyond 64 bits");
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
    }
    std::uint64_t u64() {
        const auto b = take(8);
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(b[i])) << (8 * i);
        return v;
    }
    // A length or a count of items (each at least a byte): more than the bytes left cannot be.
    std::size_t count() {
        const std::uint64_t n = varint();
        if (n > in_.size() - pos_) fail("a length of " + std::to_string(n) + " runs past the end");
        return static_cast<std::size_t>(n);
    }
    std::string_view text() { return take(count()); }

    Object value(std::size_t depth = 0) {
        if (depth > kMaxDepth) fail("it nests deeper than " + std::to_string(kMaxDepth));
        const std::size_t at = pos_;
        switch (const char t = tag()) {
            case 'N':
                return {};
            case 'T':
                return true;
            case 'F':
                return false;
            case 'i': {
                const std::uint64_t z = varint();
                return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
            }
            case 'f':
                return std::bit_cast<double>(u64());
            case 's':
                return str(text(), at);
            case 'b':
                return Object(Bytes(text()));
            case 't':
            case 'l': {
                auto items = values(count(), depth);
                return t == 't' ? Object::tuple(std::move(items)) : Object::list(std::move(items));
            }
            case 'S': {
                auto items = values(count(), depth);
                return hashed([&] { return Object::set(std::move(items)); }, at);
            }
            case 'd': {
                const std::size_t n = count();
                std::vector<std::pair<Object, Object>> items;
                items.reserve(std::min(n, kReserveAtMost));
                for (std::size_t i = 0; i < n; ++i) {
                    Object key = value(depth + 1);
                    items.emplace_back(std::move(key), value(depth + 1));
                }
                return hashed([&] { return Object::dict(std::move(items)); }, at);
            }
            case 'I': {
                const std::string_view module = text(), name = text();
                Object args = value(depth + 1);
                if (args.type() != Object::Type::tuple) fail("an instance whose arguments are not a tuple", at);
                const std::string qualified = std::string(module) + "." + std::string(name);
                if (auto own = polyproc_instance(qualified, args, make_proxy_)) return std::move(*own);
                fail(unknown_class_text(qualified), at);
            }
            default:
                fail("an unknown tag " + std::to_string(static_cast<unsigned char>(t)), at);
        }
    }

    // `n` items, each read before room is made for the next: a count claims nothing the bytes that
    // follow do not pay for (a count is checked against the bytes left, but nested counts would
    // each claim them all).
    std::vector<Object> values(std::size_t n, std::size_t depth) {
        std::vector<Object> items;
        items.reserve(std::min(n, kReserveAtMost));
        for (std::size_t i = 0; i < n; ++i) items.push_back(value(depth + 1));
        return items;
    }

    // A str, whose bytes must be UTF-8.
    static Object str(std::string_view bytes, std::size_t at) {
        try {
            return Object(bytes);
        } catch (const ValueError&) {
            fail("a str that is not valid UTF-8", at);
        }
    }

    void finish() {
        if (pos_ != in_.size()) fail(std::to_string(in_.size() - pos_) + " bytes follow the message");
    }

    [[noreturn]] void fail(const std::string& what) { fail(what, pos_); }
    [[noreturn]] static void fail(const std::string& what, std::size_t at) {
        throw ProtocolError("a manager message cannot be read: " + what + " (at byte " + std::to_string(at) + ")");
    }

private:
    std::string_view take(std::size_t n) {
        if (n > in_.size() - pos_)
            fail("it is truncated: " + std::to_string(n) + " bytes wanted, " + std::to_string(in_.size() - pos_) +
                 " left");
        const auto out = in_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    // A dict or set whose keys must hash: an unhashable one (a list) is the peer's fault.
    template <class Make>
    static Object hashed(Make&& make, std::size_t at) {
        try {
            return make();
        } catch (const TypeError& e) {
            fail(e.what(), at);
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    const ProxyMaker& make_proxy_;
};

}  // namespace

std::optional<std::string> encode_request(const Object& ident, std::string_view method, const Object& args,
                                          const Object& kwds) {
    Writer w;
    w.tag(kRequestTag);
    if (!w.value(ident)) return std::nullopt;
    w.text(method);
    if (!w.value(args) || !w.value(kwds)) return std::nullopt;
    return w.take();
}

Request decode_request(std::string_view bytes, const ProxyMaker& make_proxy) {
    Reader r(bytes, make_proxy);
    if (r.tag() != kRequestTag) r.fail("it is not a request", 0);
    Request request;
    request.encoding = Encoding::compact;
    request.ident = r.value();
    request.method = Reader::str(r.text(), 1).as_str();  // a str, as a pickle's
    request.args = r.value();
    request.kwds = r.value();
    r.finish();
    return request;  // its parts' types are checked by manager_protocol.cpp's decode_request
}

std::optional<std::string> encode_return(const Object& value) {
    Writer w;
    w.tag(kReplyTag);
    w.tag('r');
    if (!w.value(value)) return std::nullopt;
    return w.take();
}

std::optional<std::string> encode_error(const RaisedError& error) {
    Writer w;
    w.tag(kReplyTag);
    w.tag('e');
    w.text(error.module);
    w.text(error.name);
    if (!w.value(error.args)) return std::nullopt;
    return w.take();
}

std::string encode_traceback(std::string_view text) {
    Writer w;
    w.tag(kReplyTag);
    w.tag('t');
    w.text(text);
    return w.take();
}

std::string encode_proxy(const std::string& type_id, const std::string& ident) {
    Writer w;
    w.tag(kReplyTag);
    w.tag('p');
    w.text(type_id);
    w.text(ident);
    return w.take();
}

Reply decode_reply(std::string_view bytes, const ProxyMaker& make_proxy) {
    Reader r(bytes, make_proxy);
    if (r.tag() != kReplyTag) r.fail("it is not a reply", 0);
    Reply reply;
    switch (const char kind = r.tag()) {
        case 'r':
            reply.kind = "#RETURN";
            reply.value = r.value();
            break;
        case 'e': {
            reply.kind = "#ERROR";
            std::string module(r.text()), name(r.text());
            Object args = r.value();
            if (args.type() != Object::Type::tuple) r.fail("an '#ERROR' reply's args are not a tuple");
            reply.error = RaisedError{std::move(module), std::move(name), std::move(args)};
            break;
        }
        case 't':
            reply.kind = "#TRACEBACK";
            reply.value = Reader::str(r.text(), 2);
            break;
        case 'p': {
            reply.kind = "#PROXY";
            std::string type_id(r.text()), ident(r.text());
            reply.token = Token{std::move(type_id), std::move(ident)};
            break;
        }
        default:
            r.fail("an unknown reply kind " + std::to_string(static_cast<unsigned char>(kind)), 1);
    }
    r.finish();
    return reply;
}

}  // namespace polyproc::detail::manager::compact
