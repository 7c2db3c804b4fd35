// polyproc/detail/manager_register.hpp — the machinery behind mp::Registration (managers.hpp):
// Python's BaseManager.register(typeid, callable, exposed, method_to_typeid) as types, so that a
// proxy's call through a member pointer is checked by the compiler, and the server's side of it
// (make the object, run a method by name) is one function the server process can find again under
// every start method (a spawned server gets it as a code reference, as a spawned Process gets its
// target).
// Internal. Header-only; no process-safety concerns (types and the server's type-erased table).
#pragma once

#include <cstddef>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "polyproc/detail/type_name.hpp"
#include "polyproc/errors.hpp"
#include "polyproc/object.hpp"

namespace polyproc::detail::manager {

// A string as a template argument: Method<"increment", &Counter::increment>.
template <std::size_t N>
struct FixedName {
    char text[N]{};
    constexpr FixedName(const char (&s)[N]) {  // NOLINT: implicit, so that a literal is one
        for (std::size_t i = 0; i < N; ++i) text[i] = s[i];
    }
    constexpr std::string_view view() const { return {text, N - 1}; }
};

// A member pointer as a type: Method<..., &T::f> finds its Method by it.
template <auto Member>
struct MemberTag {};

// What a member function pointer takes and gives.
template <class M>
struct MemberTraits {
    static constexpr bool valid = false;
};
#define POLYPROC_MEMBER_TRAITS(QUALIFIERS)                 \
    template <class R, class C, class... A>                \
    struct MemberTraits<R (C::*)(A...) QUALIFIERS> {       \
        static constexpr bool valid = true;                \
        using result = R;                                  \
        using owner = C;                                   \
        using params = std::tuple<std::decay_t<A>...>;     \
        static constexpr std::size_t arity = sizeof...(A); \
    };
POLYPROC_MEMBER_TRAITS()
POLYPROC_MEMBER_TRAITS(const)
POLYPROC_MEMBER_TRAITS(noexcept)
POLYPROC_MEMBER_TRAITS(const noexcept)
#undef POLYPROC_MEMBER_TRAITS

// What a factory (a function pointer, or a lambda without captures) takes and gives.
template <class F>
struct FactoryTraits : FactoryTraits<decltype(&F::operator())> {};
template <class R, class... A>
struct FactoryTraits<R (*)(A...)> {
    using result = R;
    using params = std::tuple<std::decay_t<A>...>;
    static constexpr std::size_t arity = sizeof...(A);
};
template <class R, class... A>
struct FactoryTraits<R (*)(A...) noexcept> : FactoryTraits<R (*)(A...)> {};
template <class R, class L, class... A>
struct FactoryTraits<R (L::*)(A...) const> : FactoryTraits<R (*)(A...)> {};

// The object a factory's or method's result holds: T for T, std::unique_ptr<T> and std::shared_ptr<T>.
template <class R>
struct HeldType {
    using type = std::remove_cvref_t<R>;
};
template <class T, class D>
struct HeldType<std::unique_ptr<T, D>> {
    using type = T;
};
template <class T>
struct HeldType<std::shared_ptr<T>> {
    using type = T;
};
template <class R>
using held_t = typename HeldType<std::remove_cvref_t<R>>::type;

template <class T, class R>
std::shared_ptr<void> hold(R&& result) {
    using Raw = std::remove_cvref_t<R>;
    if constexpr (std::is_same_v<Raw, std::shared_ptr<T>>)
        return result;
    else if constexpr (std::is_same_v<Raw, std::unique_ptr<T>>)
        return std::shared_ptr<T>(std::move(result));
    else
        return std::make_shared<T>(std::forward<R>(result));
}

// The server's view of one registration, its methods called by name. One per registration type
// (registered_type<Reg>()); the server process finds it by a code reference.
struct RegisteredType {
    std::string_view type_id;
    const std::type_info* type;  // of the held object: checks what a method_to_typeid result holds
    std::string_view type_name;
    std::vector<std::string> (*exposed)();
    std::shared_ptr<void> (*create)(const Object& args, const Object& kwds);
    // The typeid a method's result is kept in the server as (Python's method_to_typeid): "" for a
    // method that returns its value, "Iterator" for one whose range is walked with __next__.
    std::string_view (*result_type_id)(std::string_view method);
    // Runs `method`: its result as an Object (a list for an "Iterator" method). mp::TypeError for
    // wrong arguments; an unknown method throws NotExposed.
    Object (*call)(void* self, std::string_view method, const Object& args, const Object& kwds);
    // Runs a method whose result stays in the server as another registered typeid.
    std::pair<std::shared_ptr<void>, const std::type_info*> (*call_to_held)(void* self, std::string_view method,
                                                                            const Object& args, const Object& kwds);
    std::string (*str)(const void* self);
    Object (*value)(const void* self);  // #GETVALUE: the object as an Object, when it converts
};

struct NotExposed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T>
concept Streamable = requires(std::ostream& out, const T& value) { out << value; };

template <class Params, std::size_t... I>
Params convert_args(const Object& args, std::index_sequence<I...>) {
    return Params{args[I].template as<std::tuple_element_t<I, Params>>()...};
}

template <class Tr>
typename Tr::params checked_args(std::string_view method, const Object& args, const Object& kwds) {
    if (kwds.size() != 0) throw TypeError(std::string(method) + "() takes no keyword arguments");
    if (args.size() != Tr::arity)
        throw TypeError(std::string(method) + "() takes exactly " + std::to_string(Tr::arity) + " argument" +
                        (Tr::arity == 1 ? "" : "s") + " (" + std::to_string(args.size()) + " given)");
    return convert_args<typename Tr::params>(args, std::make_index_sequence<Tr::arity>());
}

// self.*member(args converted to its parameters).
template <class M, class T>
decltype(auto) run_method(T& self, std::string_view method, const Object& args, const Object& kwds) {
    using Tr = typename M::Traits;
    auto params = checked_args<Tr>(method, args, kwds);
    return std::apply([&](auto&... p) -> decltype(auto) { return (self.*M::member)(std::move(p)...); }, params);
}

// A range's items as a list, for a method whose result is an "Iterator".
template <class R>
Object list_of_range(const R& range) {
    std::vector<Object> items;
    for (const auto& item : range) items.emplace_back(item);
    return Object::list(std::move(items));
}

// The server's side of registration Reg (a Registration<...> from managers.hpp: type_id,
// factory, type and the Method types in `methods`).
template <class Reg>
struct RegisteredOps {
    using T = typename Reg::type;
    using Methods = typename Reg::methods;
    static constexpr std::size_t kCount = std::tuple_size_v<Methods>;

    // Calls f.template operator()<M>() for the method named `name`; false when there is none.
    template <class F>
    static bool with_method(std::string_view name, F&& f) {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return ((std::tuple_element_t<I, Methods>::name == name
                         ? (f.template operator()<std::tuple_element_t<I, Methods>>(), true)
                         : false) ||
                    ...);
        }(std::make_index_sequence<kCount>());
    }
    [[noreturn]] static void not_exposed(std::string_view name) {
        throw NotExposed("AttributeError: method '" + std::string(name) + "' of " + std::string(Reg::type_id) +
                         " object is not in exposed=" + exposed_text());
    }
    static std::string exposed_text() {
        std::string text = "(";
        for (const auto& name : exposed()) text += "'" + name + "', ";
        if (text.size() > 1) text.resize(text.size() - 2);
        return text + (kCount == 1 ? ",)" : ")");
    }

    static std::vector<std::string> exposed() {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::vector<std::string>{std::string(std::tuple_element_t<I, Methods>::name)...};
        }(std::make_index_sequence<kCount>());
    }
    static std::shared_ptr<void> create(const Object& args, const Object& kwds) {
        using Tr = typename Reg::factory_traits;
        auto params = checked_args<Tr>(Reg::type_id, args, kwds);
        return hold<T>(std::apply([](auto&... p) { return Reg::factory(std::move(p)...); }, params));
    }
    static std::string_view result_type_id(std::string_view method) {
        std::string_view id;
        with_method(method, [&]<class M>() { id = M::result_type_id; });
        return id;
    }
    static Object call(void* self, std::string_view method, const Object& args, const Object& kwds) {
        Object result;
        const bool found = with_method(method, [&]<class M>() {
            using R = typename M::Traits::result;
            T& object = *static_cast<T*>(self);
            if constexpr (M::result_type_id == "Iterator") {
                result = list_of_range(run_method<M>(object, method, args, kwds));
            } else if constexpr (!M::result_type_id.empty()) {
                throw NotExposed("call_to_held for " + std::string(method));  // the server asks for it
            } else if constexpr (std::is_void_v<R>) {
                run_method<M>(object, method, args, kwds);
            } else {
                result = Object(run_method<M>(object, method, args, kwds));
            }
        });
        if (!found) not_exposed(method);
        return result;
    }
    static std::pair<std::shared_ptr<void>, const std::type_info*> call_to_held(void* self, std::string_view method,
                                                                                const Object& args,
                                                                                const Object& kwds) {
        std::pair<std::shared_ptr<void>, const std::type_info*> held{};
        const bool found = with_method(method, [&]<class M>() {
            if constexpr (!M::result_type_id.empty() && M::result_type_id != "Iterator") {
                using R = typename M::Traits::result;
                using Held = held_t<R>;
                held = {hold<Held>(run_method<M>(*static_cast<T*>(self), method, args, kwds)), &typeid(Held)};
            }
        });
        if (!found || !held.first) not_exposed(method);
        return held;
    }
    static std::string str(const void* self) {
        std::ostringstream out;
        if constexpr (Streamable<T>)
            out << *static_cast<const T*>(self);
        else
            out << "<" << type_name<T>() << " object at " << self << ">";
        return out.str();
    }
    static Object value(const void* self) {
        if constexpr (ObjectConvertible<T>)
            return Object(*static_cast<const T*>(self));
        else
            throw TypeError("cannot pickle '" + std::string(type_name<T>()) +
                            "' object (it has no mp::ObjectConversion)");
    }
};

// The table the server uses for registration Reg. Its address travels to the server process as a
// code reference (so this is a function, instantiated in the program's own code).
template <class Reg>
const RegisteredType* registered_type() {
    using Ops = RegisteredOps<Reg>;
    static const RegisteredType table{Reg::type_id,
                                      &typeid(typename Reg::type),
                                      type_name<typename Reg::type>(),
                                      &Ops::exposed,
                                      &Ops::create,
                                      &Ops::result_type_id,
                                      &Ops::call,
                                      &Ops::call_to_held,
                                      &Ops::str,
                                      &Ops::value};
    return &table;
}
using RegisteredTypeGetter = const RegisteredType* (*)();

}  // namespace polyproc::detail::manager
