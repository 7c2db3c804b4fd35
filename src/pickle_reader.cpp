// mp::pickle_loads: pickles of protocols 2 to 5 holding Python's basic types, as CPython and
// polyproc write them, read into an mp::Object. Anything else is an mp::UnpicklingError naming
// what was found and where; the input may be hostile (a manager's peer), so every length is
// checked against what is left, memo indexes are looked up, never trusted, and nesting is bounded.
//
// The pickle is first read into a graph of nodes, because a memoized list may be filled after it
// is memoized and referenced again (BINGET) before or after that; the Object is made from the
// graph at STOP. A node made once is shared (copy-on-write), so a pickle that references one list
// from many places stays small; a list that contains itself is refused.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <unordered_map>

#include "object_body.hpp"
#include "pickle.hpp"
#include "pickle_opcodes.hpp"

namespace polyproc {

namespace {

using namespace detail::pickle;

struct Node {
    enum Kind : std::uint8_t { value, tuple, list, dict, set, global } kind = value;
    Object scalar;                    // value: the scalar itself
    std::vector<std::uint32_t> items;  // tuple/list/set: items; dict: key, value, key, value...
    std::string global_name;           // global: "module.name"; a value the reducer made: its class
    enum State : std::uint8_t { unbuilt, building, built } state = unbuilt;
    Object built_object;
    // Set when built (a value made by a reducer: when made): how deep the value nests, and how many
    // values it holds with shared parts counted each time they appear (what hashing, printing or
    // pickling it again costs).
    std::uint32_t height = 0;
    std::uint64_t expanded = 1;
};

[[noreturn]] void fail(std::size_t offset, const std::string& what) {
    throw UnpicklingError("polyproc: cannot read the pickle: " + what + " (at byte " + std::to_string(offset) + ")");
}

class Reader {
public:
    explicit Reader(std::string_view in, const detail::GlobalReducer* reducer = nullptr)
        : in_(in),
          reducer_(reducer),
          node_budget_(std::max<std::size_t>(kMinNodeBudget, in.size())),
          value_budget_(std::max<std::uint64_t>(kMinValueBudget, 4 * std::uint64_t{in.size()})) {
        nodes_.reserve(std::min<std::size_t>(in.size() / 2 + 4, 64));
        stack_.reserve(16);
        memo_dense_.reserve(16);
    }

    Object run() {
        if (in_.empty()) fail(0, "it is empty");
        for (;;) {
            const std::size_t at = pos_;
            const auto code = static_cast<std::uint8_t>(take(1)[0]);
            if (code == STOP) {
                if (stack_.size() != 1 || !marks_.empty())
                    fail(at, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
                if (pos_ != in_.size()) fail(pos_, std::to_string(in_.size() - pos_) + " bytes follow STOP");
                return build(stack_.back(), 0);
            }
            step(code, at);
        }
    }

private:
    std::string_view take(std::size_t n) {
        if (n > in_.size() - pos_)
            fail(pos_, "it is truncated: " + std::to_string(n) + " bytes wanted, " + std::to_string(in_.size() - pos_) +
                           " left");
        const auto out = in_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    std::uint64_t little_endian(std::size_t width) {
        const auto bytes = take(width);
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < width; ++i)
            v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(bytes[i])) << (8 * i);
        return v;
    }
    std::size_t length(std::size_t width) {
        const std::uint64_t n = little_endian(width);
        if (n > in_.size() - pos_) fail(pos_, "a length of " + std::to_string(n) + " runs past the end");
        return static_cast<std::size_t>(n);
    }

    // Memory stays proportional to the input: a pickle holds at most about one value per byte, so
    // more (a range() of millions) is refused.
    std::uint32_t add(Node node) {
        if (nodes_.size() >= node_budget_) fail(pos_, "it makes more than " + std::to_string(node_budget_) + " values");
        nodes_.push_back(std::move(node));
        return static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    void push_value(Object o) { stack_.push_back(add(Node{Node::value, std::move(o)})); }
    void push_text(std::string_view bytes, bool is_bytes, std::size_t at) {
        if (is_bytes) {
            push_value(Object(Bytes(bytes)));
            return;
        }
        try {
            push_value(Object(bytes));
        } catch (const ValueError&) {
            fail(at, "a str that is not valid UTF-8 (a lone surrogate?)");
        }
    }
    std::uint32_t pop(std::size_t at) {
        if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail(at, "the stack is empty");
        const std::uint32_t n = stack_.back();
        stack_.pop_back();
        return n;
    }
    std::uint32_t top(std::size_t at) {
        if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail(at, "the stack is empty");
        return stack_.back();
    }
    // The values pushed since the last MARK, which is dropped.
    std::vector<std::uint32_t> pop_mark(std::size_t at) {
        if (marks_.empty()) fail(at, "no MARK to pop to");
        const std::size_t from = marks_.back();
        marks_.pop_back();
        std::vector<std::uint32_t> out(stack_.begin() + static_cast<std::ptrdiff_t>(from), stack_.end());
        stack_.resize(from);
        return out;
    }
    Node& container(std::uint32_t n, Node::Kind kind, std::size_t at, const char* op_name) {
        if (nodes_[n].kind != kind) fail(at, std::string(op_name) + " on something that is not a " + kind_name(kind));
        return nodes_[n];
    }
    static const char* kind_name(Node::Kind k) {
        switch (k) {
            case Node::list:
                return "list";
            case Node::dict:
                return "dict";
            case Node::set:
                return "set";
            case Node::tuple:
                return "tuple";
            default:
                return "value";
        }
    }
    // The memo: a vector for the indices MEMOIZE gives (0, 1, 2...) and whatever BINPUT stores
    // below the node budget; a map for the rest.
    void memo_put(std::uint64_t index, std::size_t at) {
        const std::uint32_t n = top(at);
        if (index < std::max<std::size_t>(64, in_.size())) {  // a pickle memoizes fewer values than it has bytes
            if (index >= memo_dense_.size()) memo_dense_.resize(index + 1, kNoMemo);
            memo_size_ += memo_dense_[index] == kNoMemo;
            memo_dense_[index] = n;
        } else {
            memo_size_ += memo_.insert_or_assign(index, n).second;
        }
    }
    void memo_get(std::uint64_t index, std::size_t at) {
        std::uint32_t n = kNoMemo;
        if (index < memo_dense_.size()) {
            n = memo_dense_[index];
        } else if (const auto it = memo_.find(index); it != memo_.end()) {
            n = it->second;
        }
        if (n == kNoMemo) fail(at, "memo entry " + std::to_string(index) + " was never stored");
        stack_.push_back(n);
    }
    void push_tuple(std::vector<std::uint32_t> items) {
        Node node;
        node.kind = Node::tuple;
        node.items = std::move(items);
        stack_.push_back(add(std::move(node)));
    }
    void push_empty(Node::Kind kind) {
        Node node;
        node.kind = kind;
        stack_.push_back(add(std::move(node)));
    }
    void push_global(std::string module, std::string name, std::size_t at) {
        std::string full = module + "." + name;
        if (!reducer_ && !is_known(full) && !is_polyproc(full))
            fail(at, "it refers to " + full +
                         ", which polyproc does not know (mp::Object holds None, bool, int, "
                         "float, str, bytes, tuple, list, dict and set)");
        Node node;
        node.kind = Node::global;
        node.global_name = std::move(full);
        stack_.push_back(add(std::move(node)));
    }
    std::string short_text(std::size_t at) {
        const std::uint32_t n = pop(at);
        const Node& node = nodes_[n];
        if (node.kind != Node::value || node.scalar.type() != Object::Type::str)
            fail(at, "STACK_GLOBAL wants two strs");
        return node.scalar.as_str();
    }
    // What the reducer makes of `called`(*args), remembered as an instance of `cls` for a BUILD.
    void push_reduced(const std::string& called, const std::string& cls, std::uint32_t args) {
        push_made((*reducer_)(called, build(args, 0)), args, cls);
    }
    // A value made from the values of node `args`: one level above them; `cls` for a BUILD.
    void push_made(Object made, std::uint32_t args, std::string cls = {}) {
        Node node{Node::value, std::move(made)};
        node.global_name = std::move(cls);
        node.height = nodes_[args].height + 1;
        node.expanded = nodes_[args].expanded + 1;
        stack_.push_back(add(std::move(node)));
    }
    // NEWOBJ cls args: an instance, which only a reducer can make.
    void new_object(std::size_t at) {
        const std::uint32_t args = pop(at), cls = pop(at);
        if (!reducer_ || nodes_[cls].kind != Node::global) fail(at, "NEWOBJ of something that is not a class");
        if (nodes_[args].kind != Node::tuple) fail(at, "NEWOBJ with arguments that are not a tuple");
        const std::string name = nodes_[cls].global_name;
        push_reduced(name, name, args);
    }
    // BUILD state: __setstate__ on an instance the reducer made.
    void build_state(std::size_t at) {
        const std::uint32_t state = pop(at), target = pop(at);
        const Node& made = nodes_[target];
        if (!reducer_ || made.kind != Node::value || made.global_name.empty())
            fail(at, "BUILD of something that is not an instance");
        const std::string cls = made.global_name;
        push_tuple({target, state});
        const std::uint32_t call = pop(at);
        push_reduced(cls + ".__setstate__", cls, call);
    }

    // REDUCE of the few callables pickles of basic types use: set(list), frozenset(list),
    // bytearray(bytes), bytes(), and protocol 2's _codecs.encode(str, 'latin1') for bytes.
    void reduce(std::size_t at) {
        const std::uint32_t args = pop(at), callable = pop(at);
        if (nodes_[callable].kind != Node::global) fail(at, "REDUCE of something that is not a known global");
        if (nodes_[args].kind != Node::tuple) fail(at, "REDUCE with arguments that are not a tuple");
        const std::string name = nodes_[callable].global_name;
        const std::vector<std::uint32_t> a = nodes_[args].items;
        if (reducer_ && !is_known(name)) {
            push_reduced(name, name, args);
            return;
        }
        if (is_polyproc(name)) {  // polyproc's own class (a manager proxy): an instance Object
            const auto dot = name.rfind('.');
            push_made(Object::instance(name.substr(0, dot), name.substr(dot + 1), build(args, 0)), args);
            return;
        }
        const auto base = name.substr(name.find('.') + 1);
        if (base == "set" || base == "frozenset") {
            Node node;
            node.kind = Node::set;
            if (a.size() == 1) {
                const Node& from = nodes_[a[0]];
                if (from.kind != Node::list && from.kind != Node::tuple)
                    fail(at, base + "() of something that is not a list");
                node.items = from.items;
            } else if (!a.empty()) {
                fail(at, base + "() with " + std::to_string(a.size()) + " arguments");
            }
            stack_.push_back(add(std::move(node)));
        } else if (base == "range" || base == "xrange") {
            // A range reads as the list of its ints (mp::Object has no range), within a bound.
            std::int64_t bounds[3] = {0, 0, 1};
            if (a.size() != 3) fail(at, "range() with " + std::to_string(a.size()) + " arguments");
            for (std::size_t i = 0; i < 3; ++i) {
                const Node& n = nodes_[a[i]];
                if (n.kind != Node::value || n.scalar.type() != Object::Type::integer)
                    fail(at, "range() of something not an int");
                bounds[i] = n.scalar.as_int();
            }
            const auto [start, stop, step] = bounds;
            if (step == 0) fail(at, "range() with a step of 0");
            const long double count = step > 0 ? (static_cast<long double>(stop) - start) / step
                                               : (static_cast<long double>(start) - stop) / -step;
            if (count > kMaxRangeItems) fail(at, "a range of more than " + std::to_string(kMaxRangeItems) + " ints");
            Node node;
            node.kind = Node::list;
            for (std::int64_t v = start; step > 0 ? v < stop : v > stop; v += step) {
                node.items.push_back(add(Node{Node::value, Object(v)}));
                if (step > 0 ? v > INT64_MAX - step : v < INT64_MIN - step) break;
            }
            stack_.push_back(add(std::move(node)));
        } else if (base == "bytes" || base == "bytearray") {
            if (a.empty()) {
                push_value(Object(Bytes()));
            } else if (a.size() == 1 && nodes_[a[0]].kind == Node::value &&
                       nodes_[a[0]].scalar.type() == Object::Type::bytes) {
                push_value(nodes_[a[0]].scalar);
            } else {
                fail(at, base + "() with arguments polyproc does not read");
            }
        } else {  // _codecs.encode(text, 'latin1')
            if (a.size() != 2 || nodes_[a[0]].kind != Node::value || nodes_[a[0]].scalar.type() != Object::Type::str ||
                nodes_[a[1]].kind != Node::value || nodes_[a[1]].scalar.type() != Object::Type::str ||
                (nodes_[a[1]].scalar.as_str() != "latin1" && nodes_[a[1]].scalar.as_str() != "latin-1"))
                fail(at, "_codecs.encode with arguments other than (str, 'latin1')");
            std::string bytes;
            const Object& text = nodes_[a[0]].scalar;
            for (const Object& ch : text) {
                const std::string& c = ch.as_str();
                const auto b0 = static_cast<unsigned char>(c[0]);
                if (c.size() == 1)
                    bytes.push_back(c[0]);
                else if (c.size() == 2 && b0 <= 0xc3)
                    bytes.push_back(static_cast<char>(((b0 & 0x1f) << 6) | (static_cast<unsigned char>(c[1]) & 0x3f)));
                else
                    fail(at, "_codecs.encode of a character beyond latin-1");
            }
            push_value(Object(Bytes(bytes)));
        }
    }

    void step(std::uint8_t code, std::size_t at) {
        switch (code) {
            case PROTO: {
                const auto version = little_endian(1);
                if (version < 2 || version > 5)
                    fail(at, "protocol " + std::to_string(version) + " (polyproc reads 2 to 5)");
                return;
            }
            case FRAME:
                length(8);
                return;  // a hint only: the frame's bytes follow inline
            case MARK:
                marks_.push_back(stack_.size());
                return;
            case POP:
                if (!marks_.empty() && marks_.back() == stack_.size())
                    marks_.pop_back();
                else
                    pop(at);
                return;
            case POP_MARK:
                pop_mark(at);
                return;
            case DUP:
                stack_.push_back(top(at));
                return;
            case NONE:
                push_value(Object());
                return;
            case NEWTRUE:
                push_value(Object(true));
                return;
            case NEWFALSE:
                push_value(Object(false));
                return;
            case BININT1:
                push_value(Object(little_endian(1)));
                return;
            case BININT2:
                push_value(Object(little_endian(2)));
                return;
            case BININT:
                push_value(Object(static_cast<std::int32_t>(static_cast<std::uint32_t>(little_endian(4)))));
                return;
            case LONG1:
            case LONG4: {
                const std::size_t n = length(code == LONG1 ? 1 : 4);
                const auto bytes = take(n);
                if (n > 8) {
                    // Beyond 8 bytes the value fits only if the extra bytes merely extend the sign.
                    const auto sign = static_cast<std::uint8_t>(bytes[7]) & 0x80 ? 0xff : 0x00;
                    for (std::size_t i = 8; i < n; ++i)
                        if (static_cast<std::uint8_t>(bytes[i]) != sign)
                            fail(at, "an int beyond the 64-bit ints mp::Object holds");
                }
                std::uint64_t v = 0;
                const std::size_t used = std::min<std::size_t>(n, 8);
                for (std::size_t i = 0; i < used; ++i)
                    v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(bytes[i])) << (8 * i);
                if (used > 0 && used < 8 && (static_cast<std::uint8_t>(bytes[used - 1]) & 0x80))
                    v |= ~std::uint64_t{0} << (8 * used);
                push_value(Object(static_cast<std::int64_t>(v)));
                return;
            }
            case BINFLOAT: {
                const auto bytes = take(8);
                std::uint64_t bits = 0;
                for (int i = 0; i < 8; ++i)
                    bits = (bits << 8) | static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
                push_value(Object(std::bit_cast<double>(bits)));
                return;
            }
            case SHORT_BINUNICODE:
                push_text(take(length(1)), false, at);
                return;
            case BINUNICODE:
                push_text(take(length(4)), false, at);
                return;
            case BINUNICODE8:
                push_text(take(length(8)), false, at);
                return;
            case SHORT_BINBYTES:
                push_text(take(length(1)), true, at);
                return;
            case BINBYTES:
                push_text(take(length(4)), true, at);
                return;
            case BINBYTES8:
            case BYTEARRAY8:
                push_text(take(length(8)), true, at);
                return;
            case EMPTY_TUPLE:
                push_tuple({});
                return;
            case TUPLE1:
            case TUPLE2:
            case TUPLE3: {
                std::vector<std::uint32_t> items(code - TUPLE1 + 1);
                for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop(at);
                push_tuple(std::move(items));
                return;
            }
            case TUPLE:
                push_tuple(pop_mark(at));
                return;
            case EMPTY_LIST:
                push_empty(Node::list);
                return;
            case LIST: {
                auto items = pop_mark(at);
                push_empty(Node::list);
                nodes_[stack_.back()].items = std::move(items);
                return;
            }
            case APPEND: {
                const std::uint32_t item = pop(at);
                container(top(at), Node::list, at, "APPEND").items.push_back(item);
                return;
            }
            case APPENDS: {
                auto items = pop_mark(at);
                auto& list = container(top(at), Node::list, at, "APPENDS").items;
                list.insert(list.end(), items.begin(), items.end());
                return;
            }
            case EMPTY_DICT:
                push_empty(Node::dict);
                return;
            case DICT: {
                auto items = pop_mark(at);
                if (items.size() % 2) fail(at, "DICT with an odd number of items");
                push_empty(Node::dict);
                nodes_[stack_.back()].items = std::move(items);
                return;
            }
            case SETITEM: {
                const std::uint32_t v = pop(at), k = pop(at);
                auto& d = container(top(at), Node::dict, at, "SETITEM").items;
                d.push_back(k);
                d.push_back(v);
                return;
            }
            case SETITEMS: {
                auto items = pop_mark(at);
                if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
                auto& d = container(top(at), Node::dict, at, "SETITEMS").items;
                d.insert(d.end(), items.begin(), items.end());
                return;
            }
            case EMPTY_SET:
                push_empty(Node::set);
                return;
            case ADDITEMS: {
                auto items = pop_mark(at);
                auto& s = container(top(at), Node::set, at, "ADDITEMS").items;
                s.insert(s.end(), items.begin(), items.end());
                return;
            }
            case FROZENSET: {
                auto items = pop_mark(at);
                push_empty(Node::set);
                nodes_[stack_.back()].items = std::move(items);
                return;
            }
            case MEMOIZE:
                memo_put(memo_size_, at);  // Python: len(memo)
                return;
            case BINPUT:
                memo_put(little_endian(1), at);
                return;
            case LONG_BINPUT:
                memo_put(little_endian(4), at);
                return;
            case BINGET:
                memo_get(little_endian(1), at);
                return;
            case LONG_BINGET:
                memo_get(little_endian(4), at);
                return;
            case GLOBAL: {
                auto line = [&] {
                    const auto rest = in_.substr(pos_);
                    const auto nl = rest.find('\n');
                    if (nl == std::string_view::npos) fail(pos_, "GLOBAL without its newline");
                    pos_ += nl + 1;
                    return std::string(rest.substr(0, nl));
                };
                std::string module = line();
                std::string name = line();
                // Python decodes them as UTF-8 (found by fuzz/pickle_loads_fuzzer: a class name
                // that was not could be read, and then not written)
                for (const std::string* part : {&module, &name}) {
                    try {
                        (void)Object(std::string_view(*part));
                    } catch (const ValueError&) {
                        fail(at, "a GLOBAL name that is not valid UTF-8");
                    }
                }
                push_global(std::move(module), std::move(name), at);
                return;
            }
            case STACK_GLOBAL: {
                std::string name = short_text(at);
                std::string module = short_text(at);
                push_global(std::move(module), std::move(name), at);
                return;
            }
            case REDUCE:
                reduce(at);
                return;
            case NEWOBJ:
                new_object(at);
                return;
            case BUILD:
                build_state(at);
                return;
            default: {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02x", code);
                fail(at, std::string("opcode ") + hex + " is not one polyproc reads (protocols 2 to 5, basic types)");
            }
        }
    }

    // The Object of node n, built once (a node reached again is shared). Refuses values that nest
    // deeper than kMaxDepth at any place they appear, and values that expand beyond the budget
    // (t0 = None, t1 = (t0, t0), ... doubles with every level: 64 levels in 135 bytes).
    Object build(std::uint32_t n, std::size_t depth) {
        Node& node = nodes_[n];
        if (node.state == Node::building) fail(pos_, "a container holds itself, which an mp::Object cannot");
        if (depth + node.height > kMaxDepth) fail(pos_, "values nest deeper than " + std::to_string(kMaxDepth));
        if (node.state == Node::built) return node.built_object;
        node.state = Node::building;
        Object out;
        std::uint32_t height = node.height;
        std::uint64_t expanded = node.expanded;
        const std::vector<std::uint32_t> items = node.items;  // nodes_ stays put; the copy keeps recursion simple
        const auto child = [&](std::uint32_t c) {
            Object built = build(c, depth + 1);
            height = std::max(height, nodes_[c].height + 1);
            expanded = std::min(expanded + nodes_[c].expanded, value_budget_ + 1);
            if (expanded > value_budget_)
                fail(pos_, "it expands to more than " + std::to_string(value_budget_) +
                               " values (shared parts counted each time they appear)");
            return built;
        };
        try {
            switch (node.kind) {
                case Node::value:
                    out = node.scalar;
                    break;
                case Node::tuple:
                case Node::list:
                case Node::set: {
                    std::vector<Object> built;
                    built.reserve(items.size());
                    for (std::uint32_t c : items) built.push_back(child(c));
                    const auto kind = nodes_[n].kind;
                    out = kind == Node::tuple  ? Object::tuple(std::move(built))
                          : kind == Node::list ? Object::list(std::move(built))
                                               : Object::set(std::move(built));
                    break;
                }
                case Node::dict: {
                    out = Object::dict();
                    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
                        Object key = child(items[i]);
                        out[key] = child(items[i + 1]);
                    }
                    break;
                }
                case Node::global:
                    if (!reducer_) fail(pos_, "a global where a value belongs");
                    out = (*reducer_)(node.global_name, Object());
                    break;
                default:
                    fail(pos_, "a MARK where a value belongs");
            }
        } catch (const TypeError& e) {  // an unhashable key or set item
            fail(pos_, e.what());
        }
        Node& done = nodes_[n];
        done.state = Node::built;
        done.built_object = out;
        done.height = height;
        done.expanded = expanded;
        return out;
    }

    // The globals pickles of the basic types use.
    static bool is_polyproc(const std::string& name) { return name.starts_with("polyproc."); }
    static bool is_known(const std::string& name) {
        static const char* const known[] = {"builtins.set",          "builtins.frozenset", "builtins.bytearray",
                                            "builtins.bytes",        "__builtin__.set",    "__builtin__.frozenset",
                                            "__builtin__.bytearray", "__builtin__.bytes",  "_codecs.encode",
                                            "builtins.range",        "__builtin__.xrange"};
        return std::find(std::begin(known), std::end(known), name) != std::end(known);
    }

    std::string_view in_;
    const detail::GlobalReducer* reducer_;
    const std::size_t node_budget_;
    const std::uint64_t value_budget_;
    std::size_t pos_ = 0;
    std::vector<Node> nodes_;
    std::vector<std::uint32_t> stack_;
    std::vector<std::size_t> marks_;  // stack sizes at each MARK
    static constexpr std::uint32_t kNoMemo = 0xffffffff;
    std::vector<std::uint32_t> memo_dense_;
    std::unordered_map<std::uint64_t, std::uint32_t> memo_;
    std::uint64_t memo_size_ = 0;  // entries stored: MEMOIZE's next index
};

}  // namespace

Object pickle_loads(std::string_view data) { return Reader(data).run(); }

Object detail::pickle_loads_with(std::string_view data, const GlobalReducer& reducer) {
    return Reader(data, &reducer).run();
}

Object pickle_loads(std::span<const std::byte> data) {
    return pickle_loads(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

}  // namespace polyproc
