// mp::pickle_dumps: an Object as CPython's pickle protocol 4 writes it, framed as CPython frames
// it, so that a Python peer reads it with pickle.loads and small messages match Python's bytes.
// Python memoizes by object identity; an Object has none, so a value that Python would share
// (the same str object twice) is written twice here: the bytes differ, the value is the same.
#include <bit>
#include <cstring>
#include <utility>

#include "object_body.hpp"
#include "pickle.hpp"
#include "pickle_opcodes.hpp"

namespace polyproc {

namespace {

using namespace detail::pickle;

// The writer-only forms of pickle_global and pickle_new_object: instances of a class no pickle
// can name (the module is not an identifier).
constexpr std::string_view kFormModule = "\x01pickle";

class Writer {
public:
    Writer() = default;
    explicit Writer(const detail::InstanceRewriter* rewrite) : rewrite_(rewrite) {}

    std::string finish(const Object& value) {
        begin();
        save(value);
        return end();
    }

    // (first, module.name(*args)), as CPython's save_tuple and save_reduce write it.
    std::string finish_pair_with_call(const Object& first, std::string_view module, std::string_view name,
                                      const Object& args) {
        begin();
        save(first);
        save_global(module, name);
        save(args);
        op(REDUCE);
        op(MEMOIZE);
        op(TUPLE2);
        op(MEMOIZE);
        return end();
    }

    // (first, (second, module.name object with `state`)): Python's copyreg.__newobj__ for a class
    // with __getstate__ (a manager's Token in a '#PROXY' reply).
    std::string finish_pair_with_instance(const Object& first, const Object& second, std::string_view module,
                                          std::string_view name, const Object& state) {
        begin();
        save(first);
        save(second);
        save_global(module, name);
        op(EMPTY_TUPLE);
        op(NEWOBJ);
        op(MEMOIZE);
        save(state);
        op(BUILD);
        op(TUPLE2);
        op(MEMOIZE);
        op(TUPLE2);
        op(MEMOIZE);
        return end();
    }

private:
    void begin() {
        out_.reserve(128);
        out_.push_back(static_cast<char>(PROTO));
        out_.push_back(static_cast<char>(kWriteProtocol));
        start_frame();
    }
    std::string end() {
        out_.push_back(static_cast<char>(STOP));
        commit_frame();
        return std::move(out_);
    }

    void op(Opcode o) { out_.push_back(static_cast<char>(o)); }
    // module.name as protocol 4 names a class: two strs, STACK_GLOBAL, memoized.
    void save_global(std::string_view module, std::string_view name) {
        save_text(module, false);
        save_text(name, false);
        op(STACK_GLOBAL);
        op(MEMOIZE);
    }
    template <class T>
    void little_endian(T v) {
        for (std::size_t i = 0; i < sizeof(T); ++i)
            out_.push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
    }

    // A frame is opened with a 9-byte header placeholder; committing fills it in, or removes it
    // when the frame is too small to need one.
    void start_frame() {
        frame_start_ = out_.size();
        out_.append(9, '\0');
    }
    void commit_frame() {
        const std::size_t length = out_.size() - frame_start_ - 9;
        if (length < kFrameSizeMin) {
            out_.erase(frame_start_, 9);
            return;
        }
        out_[frame_start_] = static_cast<char>(FRAME);
        for (std::size_t i = 0; i < 8; ++i) out_[frame_start_ + 1 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
    }
    // After each value, as CPython's _Pickler_OpcodeBoundary: a frame past its target size ends.
    void opcode_boundary() {
        if (out_.size() - frame_start_ - 9 >= kFrameSizeTarget) {
            commit_frame();
            start_frame();
        }
    }
    // A payload of 64 KiB or more goes outside any frame, as CPython writes it.
    void write_payload(std::string_view header, std::string_view payload) {
        if (payload.size() >= kFrameSizeTarget) {
            commit_frame();
            out_.append(header);
            out_.append(payload);
            start_frame();
        } else {
            out_.append(header);
            out_.append(payload);
        }
    }

    void save(const Object& value) {
        save_value(value);
        opcode_boundary();
    }

    void save_int(std::int64_t v) {
        if (v >= 0 && v <= 0xff) {
            op(BININT1);
            little_endian<std::uint8_t>(static_cast<std::uint8_t>(v));
        } else if (v >= 0 && v <= 0xffff) {
            op(BININT2);
            little_endian<std::uint16_t>(static_cast<std::uint16_t>(v));
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op(BININT);
            little_endian<std::uint32_t>(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
        } else {
            // The fewest little-endian two's complement bytes that keep the sign.
            std::size_t n = 8;
            const auto u = static_cast<std::uint64_t>(v);
            while (n > 1) {
                const auto top = static_cast<std::uint8_t>(u >> (8 * (n - 1)));
                const auto next_sign = static_cast<std::uint8_t>(u >> (8 * (n - 2))) & 0x80;
                if ((top == 0x00 && next_sign == 0) || (top == 0xff && next_sign != 0))
                    --n;
                else
                    break;
            }
            op(LONG1);
            out_.push_back(static_cast<char>(n));
            for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
        }
    }

    void save_text(std::string_view text, bool is_bytes) {
        std::string header;
        const std::size_t n = text.size();
        auto header_with = [&](Opcode o, std::uint64_t length, std::size_t width) {
            header.push_back(static_cast<char>(o));
            for (std::size_t i = 0; i < width; ++i) header.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
        };
        if (n <= 0xff)
            header_with(is_bytes ? SHORT_BINBYTES : SHORT_BINUNICODE, n, 1);
        else if (n <= 0xffffffff)
            header_with(is_bytes ? BINBYTES : BINUNICODE, n, 4);
        else
            header_with(is_bytes ? BINBYTES8 : BINUNICODE8, n, 8);
        write_payload(header, text);
        op(MEMOIZE);
    }

    // MARK items <closing opcode>, in batches of 1000, as CPython's _batch_appends/_batch_setitems.
    template <class Items, class SaveOne>
    void save_batches(const Items& items, std::size_t count, Opcode single, Opcode many, SaveOne save_one) {
        if (count == 1 && single != many) {
            for (const auto& item : items) save_one(item);
            op(single);
            return;
        }
        std::size_t in_batch = 0;
        for (const auto& item : items) {
            if (in_batch == 0) op(MARK);
            save_one(item);
            if (++in_batch == kBatchSize) {
                op(many);
                in_batch = 0;
            }
        }
        if (in_batch) op(many);
    }

    void save_value(const Object& value) {
        switch (value.type()) {
            case Object::Type::none:
                op(NONE);
                return;
            case Object::Type::boolean:
                op(value.as_bool() ? NEWTRUE : NEWFALSE);
                return;
            case Object::Type::integer:
                save_int(value.as_int());
                return;
            case Object::Type::floating: {
                op(BINFLOAT);
                const auto bits = std::bit_cast<std::uint64_t>(value.as_float());
                for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
                return;
            }
            case Object::Type::str:
                save_text(value.as_str(), false);
                return;
            case Object::Type::bytes:
                save_text(value.as_bytes().view(), true);
                return;
            case Object::Type::tuple: {
                const auto items = value.items_view();
                if (items.empty()) {
                    op(EMPTY_TUPLE);
                    return;
                }
                if (items.size() > 3) op(MARK);
                for (const Object& item : items) save(item);
                static constexpr Opcode small[] = {EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3};
                op(items.size() <= 3 ? small[items.size()] : TUPLE);
                op(MEMOIZE);
                return;
            }
            case Object::Type::instance:  // module.name(*args), as Python's __reduce__ gives it
                if (rewrite_ && value.instance_module() != kFormModule)
                    if (auto replacement = (*rewrite_)(value)) {
                        const auto* rewrite = std::exchange(rewrite_, nullptr);
                        save(*replacement);
                        rewrite_ = rewrite;
                        return;
                    }
                if (value.instance_module() == kFormModule) {
                    const Object& a = value.instance_args();
                    save_global(a[0].as_str(), a[1].as_str());
                    if (value.instance_name() == "new") {
                        op(EMPTY_TUPLE);
                        op(NEWOBJ);
                        op(MEMOIZE);
                        save(a[2]);
                        op(BUILD);
                    }
                    return;
                }
                save_global(value.instance_module(), value.instance_name());
                save(value.instance_args());
                op(REDUCE);
                op(MEMOIZE);
                return;
            case Object::Type::list: {
                op(EMPTY_LIST);
                op(MEMOIZE);
                const auto items = value.items_view();
                save_batches(items, items.size(), APPEND, APPENDS, [&](const Object& item) { save(item); });
                return;
            }
            case Object::Type::dict: {
                op(EMPTY_DICT);
                op(MEMOIZE);
                const auto items = value.items();
                save_batches(items, items.size(), SETITEM, SETITEMS, [&](const std::pair<Object, Object>& kv) {
                    save(kv.first);
                    save(kv.second);
                });
                return;
            }
            case Object::Type::set: {
                op(EMPTY_SET);
                op(MEMOIZE);
                save_batches(value, value.size(), ADDITEMS, ADDITEMS, [&](const Object& item) { save(item); });
                return;
            }
        }
    }

    std::string out_;
    std::size_t frame_start_ = 0;
    const detail::InstanceRewriter* rewrite_ = nullptr;
};

}  // namespace

std::string pickle_dumps(const Object& value) { return Writer().finish(value); }

std::string detail::pickle_dumps_with(const Object& value, const InstanceRewriter& rewrite) {
    return Writer(&rewrite).finish(value);
}

Object detail::pickle_global(std::string_view module, std::string_view name) {
    return Object::instance(std::string(kFormModule), "global", Object::tuple({Object(module), Object(name)}));
}

Object detail::pickle_new_object(std::string_view module, std::string_view name, const Object& state) {
    return Object::instance(std::string(kFormModule), "new", Object::tuple({Object(module), Object(name), state}));
}

std::string detail::pickle_dumps_pair_with_call(const Object& first, std::string_view module, std::string_view name,
                                                const Object& args) {
    if (args.type() != Object::Type::tuple) throw TypeError("a call's arguments must be a tuple");
    return Writer().finish_pair_with_call(first, module, name, args);
}

std::string detail::pickle_dumps_pair_with_instance(const Object& first, const Object& second, std::string_view module,
                                                    std::string_view name, const Object& state) {
    return Writer().finish_pair_with_instance(first, second, module, name, state);
}

}  // namespace polyproc
