// What the manager protocol needs from the pickle codec beyond mp::pickle_dumps/pickle_loads:
// Python objects other than the basic types, in the one shape the protocol uses them, a call
// `module.name(*args)` (an exception instance in an '#ERROR' reply: `KeyError('k')` is
// STACK_GLOBAL builtins.KeyError, the tuple ('k',), REDUCE).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "polyproc/object.hpp"

namespace polyproc::detail {

// Reads a pickle as mp::pickle_loads does, except that a call of a global outside the basic types
// is handed to `reducer` (its "module.name" and its arguments) and replaced by what it returns;
// the reducer throws mp::UnpicklingError for a global it does not accept. An instance made by
// NEWOBJ (module.name.__new__(module.name, *args)) is handed over the same way, and a BUILD on
// what the reducer made calls it again with "module.name.__setstate__" and (made, state).
// A global that is a value itself rather than called (the class argument of Python's
// RebuildProxy(DictProxy, token, ...)) is handed over with `args` None.
using GlobalReducer = std::function<Object(const std::string& qualified_name, const Object& args)>;
Object pickle_loads_with(std::string_view data, const GlobalReducer& reducer);

// Writes `value` as pickle_dumps does, except that an instance for which `rewrite` returns an
// Object is written as that Object instead (once: the replacement is not rewritten). The
// replacement may use the two forms below, which only this writer knows.
using InstanceRewriter = std::function<std::optional<Object>(const Object& instance)>;
std::string pickle_dumps_with(const Object& value, const InstanceRewriter& rewrite);
// The global module.name itself, as a value (STACK_GLOBAL).
Object pickle_global(std::string_view module, std::string_view name);
// An object of class module.name made by copyreg.__newobj__ and given `state` (NEWOBJ, BUILD):
// how Python pickles a class with __getstate__, such as a manager's Token.
Object pickle_new_object(std::string_view module, std::string_view name, const Object& state);

// The pickle of the pair (first, module.name(*args)), byte for byte as CPython writes it.
std::string pickle_dumps_pair_with_call(const Object& first, std::string_view module, std::string_view name,
                                        const Object& args);

// The pickle of (first, (second, an object of class module.name whose __setstate__ gets
// `state`)), byte for byte as CPython writes it for a class with __getstate__ (a manager's Token).
std::string pickle_dumps_pair_with_instance(const Object& first, const Object& second, std::string_view module,
                                            std::string_view name, const Object& state);

}  // namespace polyproc::detail
