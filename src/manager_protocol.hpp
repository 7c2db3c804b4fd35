// The manager protocol's messages, in one place: CPython's request 4-tuples and reply 2-tuples
// (wire.md §4), pickled. Both the server and the proxies use these and nothing else, so that a
// Python peer (issue #15) meets the same bytes.
//
//   request   (ident, methodname, args, kwds)   ident None for a server function
//   reply     ('#RETURN', value) | ('#ERROR', exception) | ('#TRACEBACK', text) | ...
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "polyproc/connection.hpp"
#include "polyproc/object.hpp"

namespace polyproc::detail::manager {

// How a message is written: as CPython's pickles (what every peer reads), or in polyproc's compact
// form (manager_compact.hpp), which a polyproc client uses on a mailbox channel. Readers take
// either; the server answers in the request's.
enum class Encoding : std::uint8_t { pickle, compact };

struct Request {
    Object ident;  // None, or the object's id (a str)
    std::string method;
    Object args;  // a tuple
    Object kwds;  // a dict
    Encoding encoding = Encoding::pickle;  // the request's, for its reply
};

// An exception as it travels in '#ERROR': its Python class and its args.
struct RaisedError {
    std::string module, name;  // "builtins", "KeyError"
    Object args;               // a tuple
};

// What a '#PROXY' reply names: an object the server made from a method's result. (Its Token
// also has the server's address; a proxy uses the address it already has, as CPython's does.)
struct Token {
    std::string type_id, ident;
};

struct Reply {
    std::string kind;  // "#RETURN", "#ERROR", "#TRACEBACK", "#UNSERIALIZABLE", "#PROXY"
    Object value;      // #RETURN's value, or the text of #TRACEBACK / #UNSERIALIZABLE
    std::optional<RaisedError> error;
    std::optional<Token> token;  // #PROXY's
};

// A malformed request or reply; its what() is what the server puts in its '#TRACEBACK'.
class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A proxy inside a value (a ListProxy stored in a managed dict) travels as the instance
// polyproc.Proxy(typeid, address, ident). Reading one, each end makes its own instance Object
// (the server holds a reference to the object while the value exists; a client keeps the key to
// reach it with); without a maker it reads as a bare instance.
inline constexpr std::string_view kProxyModule = "polyproc", kProxyClass = "Proxy";
using ProxyMaker = std::function<Object(const Object& args)>;
// The instance polyproc.Proxy(*args), carrying `attachment`; and whether an Object is one.
Object proxy_object(const Object& args, std::shared_ptr<const ObjectAttachment> attachment = {});
inline bool is_proxy_object(const Object& o) { return o.is_instance_of(kProxyModule, kProxyClass); }
// The classes a value may call besides Python's basic types, as either encoding reads them:
// polyproc.Proxy (made by `make_proxy`, or a bare instance) and polyproc.Native (a Serializable
// type's value). Nothing for any other class, which a reader refuses with unknown_class_text.
std::optional<Object> polyproc_instance(std::string_view qualified, const Object& args, const ProxyMaker& make_proxy);
std::string unknown_class_text(std::string_view qualified);
// A Token a request carries (Python's get_methods(token)): its state (typeid, address, id).
std::optional<Object> token_state(const Object& read);

// The methods a typeid's objects expose, as create() answers them: the SyncManager typeids whose
// Python proxy is an AutoProxy (Queue, JoinableQueue, Iterator, Pool, AsyncResult...); empty for
// the others (the fixed proxy types, DictProxy, AcquirerProxy..., do not use them).
Object native_exposed(const std::string& type_id);
// A pickled proxy of a typeid whose Python class is AutoProxy carries its exposed methods (Python's
// AutoProxy would otherwise ask for them over a connection it does not authenticate). They come
// from this thread's lookup (a server's connection thread sets its registry's), else from
// native_exposed.
void set_exposed_lookup(std::function<Object(const std::string& type_id)> lookup);

// Encoders write `encoding` (a value the compact form does not carry is pickled, and a proxy in it
// as Python's RebuildProxy); decoders read either.
std::string encode_request(const Object& ident, std::string_view method, const Object& args = Object::tuple(),
                           const Object& kwds = Object::dict(), Encoding encoding = Encoding::pickle);
Request decode_request(std::string_view bytes, const ProxyMaker& make_proxy = {});  // ProtocolError, UnpicklingError

std::string encode_return(const Object& value, Encoding encoding = Encoding::pickle);
std::string encode_error(const RaisedError& error, Encoding encoding = Encoding::pickle);
std::string encode_traceback(std::string_view text, Encoding encoding = Encoding::pickle);
// ('#PROXY', (exposed, Token(type_id, address, ident))), as CPython's server sends it; the compact
// form carries only the typeid and id (a proxy uses the address and methods it already knows).
std::string encode_proxy_reply(const Object& exposed, const std::string& type_id, const Object& address,
                               const std::string& ident, Encoding encoding = Encoding::pickle);
Object address_object(const Address& address);  // as Python has it: a path, or (host, port)
Reply decode_reply(std::string_view bytes, const ProxyMaker& make_proxy = {});  // ProtocolError, UnpicklingError

// A referent's error with its Python args (KeyError with the missing key itself), thrown on the
// server where a C++ exception would lose them.
struct Raised : std::exception {
    explicit Raised(RaisedError e) : error(std::move(e)) {}
    const char* what() const noexcept override { return "a manager referent raised"; }
    RaisedError error;
};

// The error a method's C++ exception becomes on the wire (mp::KeyError is builtins.KeyError, ...),
// for the exception being handled now.
RaisedError current_exception_as_raised();

// Throws what a reply says went wrong, as the C++ type matching the Python one (KeyError as
// mp::KeyError, ...; an unknown type as mp::RemoteError). `where` names the manager.
[[noreturn]] void raise_reply_error(const Reply& reply, const std::string& where);

}  // namespace polyproc::detail::manager
