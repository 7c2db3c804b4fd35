// A manager's registered user types (BaseManager::register_): the server's referent around one
// object made by a registration's factory or kept from a method's result (method_to_typeid).
#include <mutex>

#include "manager_server.hpp"

namespace polyproc::detail::manager {

namespace {

class RegisteredReferent : public NativeReferent {
public:
    RegisteredReferent(const RegisteredType& type, std::shared_ptr<void> object)
        : type_(type), object_(std::move(object)) {}

    Object call(const std::string& method, const Object& args, const Object& kwds, const Caller&) override {
        std::lock_guard lock(mu_);  // one method at a time: the class needs no locks of its own
        if (method == "#GETVALUE") return type_.value(object_.get());
        try {
            return type_.call(object_.get(), method, args, kwds);
        } catch (const NotExposed& e) {
            throw UnknownName(e.what());
        }
    }

    std::string repr() const override {
        std::lock_guard lock(mu_);
        return type_.str(object_.get());
    }

    std::string_view result_type_id(const std::string& method) const override { return type_.result_type_id(method); }

    std::shared_ptr<Referent> call_for_referent(const std::string& method, const Object& args, const Object& kwds,
                                                const Registry& registry) override {
        const std::string type_id(type_.result_type_id(method));
        if (type_id == "Iterator") {  // the method's range, copied into the server's iterator
            auto made = std::make_shared<Referent>();
            made->type_id = type_id;
            made->value = make_referent_value(type_id, Object::tuple({call(method, args, kwds, Caller{})}), {});
            return made;
        }
        const auto target = registry.find(type_id);
        if (target == registry.end())
            throw UnknownName("KeyError: " + repr_of(type_id) + " (the typeid " + std::string(type_.type_id) + "." +
                              method + "() returns, which this manager has not registered)");
        std::pair<std::shared_ptr<void>, const std::type_info*> held;
        {
            std::lock_guard lock(mu_);
            try {
                held = type_.call_to_held(object_.get(), method, args, kwds);
            } catch (const NotExposed& e) {
                throw UnknownName(e.what());
            }
        }
        if (*held.second != *target->second->type)
            throw UnknownName("TypeError: " + std::string(type_.type_id) + "." + method + "() returns a " +
                              held.second->name() + ", not the " + std::string(target->second->type_name) +
                              " that typeid " + repr_of(type_id) + " holds");
        auto made = std::make_shared<Referent>();
        made->type_id = type_id;
        made->native = make_registered_referent(*target->second, std::move(held.first));
        return made;
    }

private:
    static std::string repr_of(const std::string& text) { return polyproc::repr(Object(text)); }

    const RegisteredType& type_;
    std::shared_ptr<void> object_;
    mutable std::mutex mu_;
};

}  // namespace

std::unique_ptr<NativeReferent> make_registered_referent(const RegisteredType& type, std::shared_ptr<void> object) {
    return std::make_unique<RegisteredReferent>(type, std::move(object));
}

}  // namespace polyproc::detail::manager
