// polyproc/detail/archive.hpp — the cereal archives behind the codec. Output writes to a byte
// vector, into a fixed span, or only counts the bytes (the sizing pass that lets a queue encode
// straight into its ring). Input reads from a span and is hardened against hostile bytes: every read is
// bounds-checked, every container length is checked against the bytes left before anything is
// allocated, and a bool must be 0 or 1. A bad frame becomes mp::DecodeError, never UB.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>

#include "polyproc/errors.hpp"

namespace polyproc::detail {

// Writes to one of three sinks: appends to a byte vector (Connection.send), writes into a fixed span
// sized beforehand (a Queue encodes straight into shared memory, with no intermediate copy), or only
// counts the bytes (the sizing pass that comes before the span).
class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit OutputArchive(std::vector<std::byte>& out)
        : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), vector_(&out) {}
    explicit OutputArchive(std::span<std::byte> out)
        : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), span_(out) {}
    struct CountOnly {};
    explicit OutputArchive(CountOnly)
        : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), counting_(true) {}

    void saveBinary(const void* data, std::size_t size) {
        const auto* p = static_cast<const std::byte*>(data);
        if (vector_) {
            vector_->insert(vector_->end(), p, p + size);
        } else if (!counting_) {
            // A serialize() that writes more the second time than it did when counted.
            if (size > span_.size() - written_)
                throw ValueError(
                    "polyproc: a value serialized to more bytes than its sizing pass counted "
                    "(its serialize function is not deterministic)");
            if (size) std::memcpy(span_.data() + written_, p, size);
        }
        written_ += size;
    }
    std::size_t written() const noexcept { return written_; }

private:
    std::vector<std::byte>* vector_ = nullptr;
    std::span<std::byte> span_;
    bool counting_ = false;
    std::size_t written_ = 0;
};

class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
public:
    explicit InputArchive(std::span<const std::byte> in)
        : cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>(this), in_(in) {}
    void loadBinary(void* data, std::size_t size) {
        if (size > in_.size() - pos_)
            throw DecodeError("polyproc: truncated message (needed " + std::to_string(size) + " more bytes, " +
                              std::to_string(in_.size() - pos_) + " left)");
        if (size) std::memcpy(data, in_.data() + pos_, size);
        pos_ += size;
    }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }

private:
    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
};

template <class T>
    requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const T& t) {
    ar.saveBinary(std::addressof(t), sizeof(t));
}

template <class T>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, T& t) {
    ar.loadBinary(std::addressof(t), sizeof(t));
}

inline void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, bool& t) {
    unsigned char c = 0;
    ar.loadBinary(&c, 1);
    if (c > 1) throw DecodeError("polyproc: corrupt message (a bool holds " + std::to_string(c) + ")");
    t = c != 0;
}

// A trivially copyable struct nested in a cereal-serialized type (a POD member of a user type, the
// element of a vector) travels as its bytes, like a top-level one, unless it has cereal functions
// of its own. Detection asks cereal's stock binary archive, which knows nothing of this fallback.
template <class T>
struct is_view : std::false_type {};
template <class C, class Tr>
struct is_view<std::basic_string_view<C, Tr>> : std::true_type {};
template <class T, std::size_t N>
struct is_view<std::span<T, N>> : std::true_type {};

template <class T>
concept RawBytesFallback = std::is_trivially_copyable_v<T> && std::is_class_v<T> && !is_view<T>::value &&
                           !cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
                           !cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

template <RawBytesFallback T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const T& t) {
    ar.saveBinary(std::addressof(t), sizeof(t));
}
template <RawBytesFallback T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, T& t) {
    ar.loadBinary(std::addressof(t), sizeof(t));
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::SizeTag<T>& t) {
    const std::uint64_t n = t.size;
    ar.saveBinary(&n, sizeof n);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::SizeTag<T>& t) {
    std::uint64_t n = 0;
    ar.loadBinary(&n, sizeof n);
    // Every element costs at least one byte on the wire (empty classes excepted), so a length
    // beyond the bytes left is corruption; checking it here keeps a hostile frame from making us
    // allocate gigabytes.
    if (n > ar.remaining())
        throw DecodeError("polyproc: corrupt message (a container claims " + std::to_string(n) + " elements with " +
                          std::to_string(ar.remaining()) + " bytes left)");
    t.size = static_cast<std::remove_reference_t<T>>(n);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace polyproc::detail

CEREAL_REGISTER_ARCHIVE(polyproc::detail::OutputArchive)
CEREAL_REGISTER_ARCHIVE(polyproc::detail::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(polyproc::detail::InputArchive, polyproc::detail::OutputArchive)
