// The manager protocol's fast encoding (polyproc's own): the same requests and replies as the
// pickles of manager_protocol.hpp, written as tagged binary that takes a fraction of the time to
// make and read (a pickle's reader builds a graph for memo references; these messages need none).
// A polyproc client uses it only on a mailbox channel, where both ends are polyproc, and the
// server answers each request in the encoding it came in, so a Python peer never meets it.
//
// A message starts with a byte no pickle starts with ('Q' a request, 'R' a reply; a pickle opens
// with PROTO, 0x80). Lengths and counts are LEB128 varints (7 bits a byte, low first), so that a
// typical request fits the 56 bytes a mailbox carries in the line of its word. Values: a tag
// byte, then
//   N None   T True   F False   i int64 (zigzag varint)   f float (8 bytes, the double's bits LE)
//   s str / b bytes: length, then the bytes (str is UTF-8, checked)
//   t tuple / l list / S set: count, then the items       d dict: count, then key, value...
//   I instance: module and name (each a length and bytes), then its args (a value)
// request  'Q' ident(value: None or str) method(length, bytes) args(tuple) kwds(dict)
// reply    'R' then 'r' value | 'e' module name args(tuple) | 't' text | 'p' typeid ident
//          (#RETURN, #ERROR, #TRACEBACK, #PROXY; module, name, text, typeid and ident as a
//          length and bytes)
// Like the pickle reader, the reader takes its input as hostile: lengths and counts are checked
// against what is left, nesting is bounded, and any fault is a ProtocolError naming it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "manager_protocol.hpp"

namespace polyproc::detail::manager::compact {

inline constexpr char kRequestTag = 'Q', kReplyTag = 'R';

inline bool is_request(std::string_view bytes) noexcept { return !bytes.empty() && bytes[0] == kRequestTag; }
inline bool is_reply(std::string_view bytes) noexcept { return !bytes.empty() && bytes[0] == kReplyTag; }

// Nothing when a value holds what this encoding does not carry (nesting deeper than the reader
// takes): the caller pickles the message instead.
std::optional<std::string> encode_request(const Object& ident, std::string_view method, const Object& args,
                                          const Object& kwds);
// The request as read; decode_request in manager_protocol.hpp, which calls this, checks its parts.
Request decode_request(std::string_view bytes, const ProxyMaker& make_proxy);

std::optional<std::string> encode_return(const Object& value);
std::optional<std::string> encode_error(const RaisedError& error);
std::string encode_traceback(std::string_view text);
std::string encode_proxy(const std::string& type_id, const std::string& ident);
Reply decode_reply(std::string_view bytes, const ProxyMaker& make_proxy);

}  // namespace polyproc::detail::manager::compact
