// libFuzzer target: the manager server's request reader and the client's reply reader on hostile
// bytes, polyproc::detail::manager::decode_request and decode_reply (src/manager_protocol.hpp),
// which take both CPython's pickled messages and polyproc's compact encoding (a message starting
// 'Q' or 'R', src/manager_compact.hpp). Every input is given to both readers, as a peer may send
// anything where either is expected.
//
// The readers refusing the input (ProtocolError, mp::UnpicklingError, any std::exception) is fine.
// A finding is a crash, a sanitizer report, a leak, a hang, or (abort() here):
//   - a decoded request or reply breaking what the decoders promise (a request's ident None or a
//     str, args a tuple (or a list, pickled), kwds a dict; a reply's kind one of five, '#ERROR' with
//     its error, '#PROXY' with its token);
//   - a decoded message that does not survive encode -> decode unchanged, in its own encoding; and a
//     pickled request with tuple args that does not read back the same from the compact encoding;
//   - a proxy reference (the attachment the server's hold_proxy gives) outliving its values.
//
//   build/fuzz/fuzz/manager_request_fuzzer -max_len=65536 fuzz/corpus/manager_request   (tools/fuzz)
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "manager_compact.hpp"
#include "manager_protocol.hpp"
#include "polyproc/errors.hpp"
#include "object_checks.hpp"
#include "polyproc/object.hpp"

namespace {

using polyproc::Object;
namespace manager = polyproc::detail::manager;

using fuzz::fits;
using fuzz::kCheckAtMost;
using fuzz::same;
using fuzz::shown;

[[noreturn]] void finding(const char* what, const std::string& detail) {
    fuzz::finding("manager_request_fuzzer", what, detail);
}

// ---- proxies ------------------------------------------------------------------------------------

// What the server's hold_proxy attaches to a proxy of one of its own objects (a reference it
// holds while the value lives); counted, so that one outliving every value shows.
long live_holds = 0;
struct Hold final : polyproc::ObjectAttachment {
    Hold() { ++live_holds; }
    ~Hold() override { --live_holds; }
};

const Object& server_address() {
    static const Object address("/tmp/polyproc-fuzz/manager");
    return address;
}

// As Server::hold_proxy (src/manager_server.cpp): polyproc.Proxy(typeid, address, id) of this
// server gets a hold; any other args a bare proxy instance.
Object hold_proxy(const Object& args) {
    if (args.size() != 3 || args[0].type() != Object::Type::str || args[2].type() != Object::Type::str ||
        args[1] != server_address())
        return manager::proxy_object(args);
    return manager::proxy_object(args, std::make_shared<Hold>());
}

// ---- requests -----------------------------------------------------------------------------------

std::string describe(const manager::Request& r) {
    return "ident " + shown(r.ident) + ", method '" + r.method + "', args " + shown(r.args) + ", kwds " +
           shown(r.kwds) + (r.encoding == manager::Encoding::compact ? " (compact)" : " (pickle)");
}

bool same_request(const manager::Request& a, const manager::Request& b) {
    return a.method == b.method && same(a.ident, b.ident) && same(a.args, b.args) && same(a.kwds, b.kwds);
}

void check_request(std::string_view bytes, const manager::ProxyMaker& maker) {
    manager::Request first;
    try {
        first = manager::decode_request(bytes, maker);
    } catch (const std::exception&) {
        return;  // refused
    }
    const bool is_compact = manager::compact::is_request(bytes);
    if ((first.encoding == manager::Encoding::compact) != is_compact)
        finding("a request read in the other encoding than its first byte says", describe(first));
    if (!first.ident.is_none() && first.ident.type() != Object::Type::str)
        finding("a request's ident is neither None nor a str", describe(first));
    if (first.args.type() != Object::Type::tuple && !(!is_compact && first.args.type() == Object::Type::list))
        finding("a request's args are not a tuple", describe(first));
    if (first.kwds.type() != Object::Type::dict) finding("a request's kwds are not a dict", describe(first));

    std::uint64_t left = kCheckAtMost;
    if (!fits(first.ident, left) || !fits(first.args, left) || !fits(first.kwds, left)) return;

    // In its own encoding: written as it was read, read back the same.
    std::string again;
    try {
        again = manager::encode_request(first.ident, first.method, first.args, first.kwds, first.encoding);
    } catch (const std::exception& e) {
        finding("encode_request of a decoded request threw", std::string(e.what()) + "\n" + describe(first));
    }
    manager::Request second;
    try {
        second = manager::decode_request(again, maker);
    } catch (const std::exception& e) {
        finding("decode_request refused what encode_request wrote", std::string(e.what()) + "\n" + describe(first));
    }
    if (second.encoding != first.encoding || !same_request(first, second))
        finding("a request changed in encode -> decode", describe(first) + "\n" + describe(second));

    // A pickled request (a Python peer's) with tuple args, in the compact encoding, reads back the
    // same. (Not the other way: a compact request may nest one level deeper than a pickle's reader
    // takes; and compact args must be a tuple, so a pickled request's list args do not cross.)
    if (!is_compact && first.args.type() == Object::Type::tuple) {
        const std::string as_compact =
            manager::encode_request(first.ident, first.method, first.args, first.kwds, manager::Encoding::compact);
        if (!manager::compact::is_request(as_compact)) return;  // written as a pickle instead, as documented
        manager::Request third;
        try {
            third = manager::decode_request(as_compact, maker);
        } catch (const std::exception& e) {
            finding("decode_request refused the compact form of a pickled request",
                    std::string(e.what()) + "\n" + describe(first));
        }
        if (!same_request(first, third))
            finding("a pickled request changed in the compact encoding", describe(first) + "\n" + describe(third));
    }
}

// ---- replies ------------------------------------------------------------------------------------

std::string describe(const manager::Reply& r) {
    std::string text = "kind '" + r.kind + "', value " + shown(r.value);
    if (r.error) text += ", error " + r.error->module + "." + r.error->name + shown(r.error->args);
    if (r.token) text += ", token (" + r.token->type_id + ", " + r.token->ident + ")";
    return text;
}

bool same_reply(const manager::Reply& a, const manager::Reply& b) {
    if (a.kind != b.kind || !same(a.value, b.value) || a.error.has_value() != b.error.has_value() ||
        a.token.has_value() != b.token.has_value())
        return false;
    if (a.error &&
        (a.error->module != b.error->module || a.error->name != b.error->name || !same(a.error->args, b.error->args)))
        return false;
    return !a.token || (a.token->type_id == b.token->type_id && a.token->ident == b.token->ident);
}

// The reply written again as a server writes it; nothing for a kind a server does not write that way.
std::optional<std::string> encode_reply(const manager::Reply& r, manager::Encoding encoding) {
    if (r.kind == "#RETURN") return manager::encode_return(r.value, encoding);
    if (r.kind == "#ERROR") return manager::encode_error(*r.error, encoding);
    if (r.kind == "#TRACEBACK" && r.value.type() == Object::Type::str)
        return manager::encode_traceback(r.value.as_str(), encoding);
    if (r.kind == "#PROXY") {
        if (encoding == manager::Encoding::compact)
            return manager::encode_proxy_reply(Object(), r.token->type_id, Object(), r.token->ident, encoding);
        // A pickle's value is (exposed, (token marker, (typeid, address, id))), checked by decode_reply.
        return manager::encode_proxy_reply(r.value[0], r.token->type_id, r.value[1][1][1], r.token->ident, encoding);
    }
    return std::nullopt;  // '#UNSERIALIZABLE', or a '#TRACEBACK' whose text is no str
}

void check_reply(std::string_view bytes, const manager::ProxyMaker& maker) {
    manager::Reply first;
    try {
        first = manager::decode_reply(bytes, maker);
    } catch (const std::exception&) {
        return;  // refused
    }
    const std::string& kind = first.kind;
    if (kind != "#RETURN" && kind != "#ERROR" && kind != "#TRACEBACK" && kind != "#UNSERIALIZABLE" && kind != "#PROXY")
        finding("a reply of an unknown kind was accepted", describe(first));
    if ((first.kind == "#ERROR") != first.error.has_value())
        finding("a reply carries an error though it is no '#ERROR', or none though it is", describe(first));
    if ((first.kind == "#PROXY") != first.token.has_value())
        finding("a reply carries a token though it is no '#PROXY', or none though it is", describe(first));

    std::uint64_t left = kCheckAtMost;
    if (!fits(first.value, left) || (first.error && !fits(first.error->args, left))) return;

    // What a client does with a reply that is not a '#RETURN': raise it (it always throws).
    try {
        manager::raise_reply_error(first, "fuzz");
    } catch (const std::exception&) {
    }

    // Written again in its own encoding and read back, the same. Skipped when the input spells out
    // the decoder's internal markers itself (a str "\x01polyproc-raised" or "\x01polyproc-token"
    // where an exception or a Token belongs): such a reply is read as if it held one, but is not
    // written back as one.
    if (bytes.find("\x01polyproc-") != std::string_view::npos) return;
    const bool is_compact = manager::compact::is_reply(bytes);
    std::optional<std::string> again;
    try {
        again = encode_reply(first, is_compact ? manager::Encoding::compact : manager::Encoding::pickle);
    } catch (const std::exception& e) {
        finding("encoding a decoded reply threw", std::string(e.what()) + "\n" + describe(first));
    }
    if (!again) return;
    manager::Reply second;
    try {
        second = manager::decode_reply(*again, maker);
    } catch (const std::exception& e) {
        finding("decode_reply refused a reply written again", std::string(e.what()) + "\n" + describe(first));
    }
    if (!same_reply(first, second))
        finding("a reply changed in encode -> decode", describe(first) + "\n" + describe(second));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    {
        const manager::ProxyMaker maker = hold_proxy;
        check_request(input, maker);
        check_reply(input, maker);
    }
    if (live_holds != 0) finding("a proxy's hold outlived every value that held it", std::to_string(live_holds));
    return 0;
}
