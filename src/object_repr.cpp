// repr() and str() of mp::Object, character for character as Python 3 prints them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ostream>

#include "object_body.hpp"

namespace polyproc {

namespace detail {

namespace {
struct CodePointRange {
    char32_t first, last;
};
constexpr CodePointRange kNotPrintable[] = {
#include "unicode_printable.inc"
};
}  // namespace

bool is_printable(char32_t cp) noexcept {
    if (cp < 0x20 || cp == 0x7f) return false;
    if (cp < 0xa0) return cp < 0x7f;
    const auto* it = std::upper_bound(std::begin(kNotPrintable), std::end(kNotPrintable), cp,
                                      [](char32_t c, const CodePointRange& r) { return c < r.first; });
    return it == std::begin(kNotPrintable) || cp > std::prev(it)->last;
}

// Python's repr(float) ('r' format): the shortest digits that read back as the same double;
// positional when the decimal point falls from 4 places left of the digits to 16 right of the
// first one, else scientific with a signed exponent of at least two digits.
std::string float_repr(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[64];
    const char* end = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific).ptr;
    const std::string_view sci(buf, static_cast<std::size_t>(end - buf));  // -d.ddde+XX
    const std::size_t e = sci.find('e');
    const bool negative = sci.front() == '-';
    std::string digits;
    for (char c : sci.substr(negative ? 1 : 0, e - (negative ? 1 : 0)))
        if (c != '.') digits += c;
    const int exponent = std::atoi(std::string(sci.substr(e + 1)).c_str());
    const int decpt = exponent + 1;  // the value is 0.<digits> * 10**decpt
    std::string out = negative ? "-" : "";
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out += "0.";
            out.append(static_cast<std::size_t>(-decpt), '0');
            out += digits;
        } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
            out += digits;
            out.append(static_cast<std::size_t>(decpt) - digits.size(), '0');
            out += ".0";
        } else {
            out += digits;
            out.insert(out.size() - digits.size() + static_cast<std::size_t>(decpt), 1, '.');
        }
    } else {
        out += digits;
        if (digits.size() > 1) out.insert(out.size() - digits.size() + 1, 1, '.');
        const int a = exponent < 0 ? -exponent : exponent;
        out += exponent < 0 ? "e-" : "e+";
        if (a < 10) out += '0';
        out += std::to_string(a);
    }
    return out;
}

}  // namespace detail

namespace {

void append_hex(std::string& out, const char* prefix, std::uint32_t value, int digits) {
    static constexpr char hex[] = "0123456789abcdef";
    out += prefix;
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(value >> shift) & 0xf];
}

// ' unless the text holds ' and no ", as Python chooses.
char quote_for(std::string_view text) {
    return text.find('\'') != std::string_view::npos && text.find('"') == std::string_view::npos ? '"' : '\'';
}

bool escape_common(std::string& out, unsigned char c, char quote) {
    switch (c) {
        case '\\':
            out += "\\\\";
            return true;
        case '\t':
            out += "\\t";
            return true;
        case '\n':
            out += "\\n";
            return true;
        case '\r':
            out += "\\r";
            return true;
        default:
            if (c == static_cast<unsigned char>(quote)) {
                out += '\\';
                out += quote;
                return true;
            }
            return false;
    }
}

void repr_str(std::string& out, std::string_view text) {
    const char quote = quote_for(text);
    out += quote;
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            if (!escape_common(out, c, quote)) {
                if (c < 0x20 || c == 0x7f)
                    append_hex(out, "\\x", c, 2);
                else
                    out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        // A valid multi-byte sequence (checked when the str was made).
        const std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        char32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
        for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
        if (detail::is_printable(cp))
            out.append(text.substr(i, n));
        else if (cp <= 0xff)
            append_hex(out, "\\x", cp, 2);
        else if (cp <= 0xffff)
            append_hex(out, "\\u", cp, 4);
        else
            append_hex(out, "\\U", cp, 8);
        i += n;
    }
    out += quote;
}

void repr_bytes(std::string& out, std::string_view bytes) {
    const char quote = quote_for(bytes);
    out += 'b';
    out += quote;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (escape_common(out, c, quote)) continue;
        if (c < 0x20 || c >= 0x7f)
            append_hex(out, "\\x", c, 2);
        else
            out += ch;
    }
    out += quote;
}

void repr_into(std::string& out, const Object& o);

void repr_items(std::string& out, std::span<const Object> items) {
    for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) out += ", ";
        repr_into(out, items[k]);
    }
}

void repr_into(std::string& out, const Object& o) {
    switch (o.type()) {
        case Object::Type::none:
            out += "None";
            return;
        case Object::Type::boolean:
            out += o.as_bool() ? "True" : "False";
            return;
        case Object::Type::integer:
            out += std::to_string(o.as_int());
            return;
        case Object::Type::floating:
            out += detail::float_repr(o.as_float());
            return;
        case Object::Type::str:
            repr_str(out, o.as_str());
            return;
        case Object::Type::bytes:
            repr_bytes(out, o.as_bytes().view());
            return;
        case Object::Type::instance:  // <module.name('args', ...)>
            out += '<' + o.instance_module() + '.' + o.instance_name() + '(';
            repr_items(out, o.instance_args().items_view());
            out += ")>";
            return;
        case Object::Type::tuple:
            out += '(';
            repr_items(out, o.items_view());
            out += o.size() == 1 ? ",)" : ")";
            return;
        case Object::Type::list:
            out += '[';
            repr_items(out, o.items_view());
            out += ']';
            return;
        case Object::Type::dict: {
            out += '{';
            bool first = true;
            // By entries, not by looking each key up: a NaN key equals nothing, itself included
            // (Python finds it by identity, which an Object does not have).
            for (const auto& [key, value] : o.items()) {
                if (!first) out += ", ";
                first = false;
                repr_into(out, key);
                out += ": ";
                repr_into(out, value);
            }
            out += '}';
            return;
        }
        case Object::Type::set: {
            if (o.size() == 0) {
                out += "set()";
                return;
            }
            out += '{';
            bool first = true;
            for (const Object& item : o) {
                if (!first) out += ", ";
                first = false;
                repr_into(out, item);
            }
            out += '}';
            return;
        }
    }
}

}  // namespace

std::string repr(const Object& value) {
    std::string out;
    repr_into(out, value);
    return out;
}

std::string str(const Object& value) { return value.type() == Object::Type::str ? value.as_str() : repr(value); }

std::ostream& operator<<(std::ostream& out, const Object& value) { return out << str(value); }

}  // namespace polyproc
