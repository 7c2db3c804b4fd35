// The pickle opcodes polyproc writes and reads (CPython's Lib/pickle.py names), and the limits
// the reader keeps against hostile input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace polyproc::detail::pickle {

enum Opcode : std::uint8_t {
    MARK = '(',
    STOP = '.',
    POP = '0',
    POP_MARK = '1',
    DUP = '2',
    NONE = 'N',
    BININT = 'J',
    BININT1 = 'K',
    BININT2 = 'M',
    BINFLOAT = 'G',
    BINUNICODE = 'X',
    BINBYTES = 'B',
    SHORT_BINBYTES = 'C',
    APPEND = 'a',
    APPENDS = 'e',
    BUILD = 'b',
    GLOBAL = 'c',
    DICT = 'd',
    EMPTY_DICT = '}',
    BINGET = 'h',
    LONG_BINGET = 'j',
    LIST = 'l',
    EMPTY_LIST = ']',
    BINPUT = 'q',
    LONG_BINPUT = 'r',
    REDUCE = 'R',
    SETITEM = 's',
    SETITEMS = 'u',
    TUPLE = 't',
    EMPTY_TUPLE = ')',
    // protocol 2
    PROTO = 0x80,
    NEWOBJ = 0x81,
    TUPLE1 = 0x85,
    TUPLE2 = 0x86,
    TUPLE3 = 0x87,
    NEWTRUE = 0x88,
    NEWFALSE = 0x89,
    LONG1 = 0x8a,
    LONG4 = 0x8b,
    // protocol 4
    SHORT_BINUNICODE = 0x8c,
    BINUNICODE8 = 0x8d,
    BINBYTES8 = 0x8e,
    EMPTY_SET = 0x8f,
    ADDITEMS = 0x90,
    FROZENSET = 0x91,
    NEWOBJ_EX = 0x92,
    STACK_GLOBAL = 0x93,
    MEMOIZE = 0x94,
    FRAME = 0x95,
    // protocol 5
    BYTEARRAY8 = 0x96,
};

inline constexpr int kWriteProtocol = 4;                  // readable by every Python from 3.4 on
inline constexpr std::size_t kFrameSizeTarget = 64 * 1024;  // CPython's _FRAME_SIZE_TARGET
inline constexpr std::size_t kFrameSizeMin = 4;           // smaller frames get no FRAME opcode
inline constexpr std::size_t kBatchSize = 1000;           // items per APPENDS / SETITEMS / ADDITEMS
inline constexpr std::size_t kMaxDepth = 1000;            // nesting the reader accepts
inline constexpr std::int64_t kMaxRangeItems = 10'000'000;  // a range() reads as a list up to this size
// What a pickle of n bytes may make: max(kMinNodeBudget, n) values, expanding (shared parts
// counted each time they appear) to max(kMinValueBudget, 4n).
inline constexpr std::size_t kMinNodeBudget = 1'000'000;
inline constexpr std::uint64_t kMinValueBudget = 10'000'000;

}  // namespace polyproc::detail::pickle
