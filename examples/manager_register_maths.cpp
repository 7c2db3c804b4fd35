// manager_register_maths — Python's "Customized managers" example from the multiprocessing docs
// (a MathsClass registered with a BaseManager subclass), then a user class that several processes
// share through one manager:
//
//   class MyManager(BaseManager): pass
//   MyManager.register('Maths', MathsClass)
//   with MyManager() as manager:
//       maths = manager.Maths()
//       print(maths.add(4, 3))         # prints 7
//       print(maths.mul(7, 8))         # prints 56
//
// In C++ the registration is a type: the typeid, a factory and the exposed methods as member
// pointers, so that maths.call<&MathsClass::add>("4", 3) does not compile.
#include <iostream>
#include <string>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

class MathsClass {
public:
    int add(int x, int y) const { return x + y; }
    int mul(int x, int y) const { return x * y; }
};

// A ledger that lives in the manager's server: no lock here, the server runs one method at a time.
class Ledger {
public:
    void deposit(const std::string& who, int amount) {
        total_ += amount;
        entries_.push_back(who + " +" + std::to_string(amount));
    }
    int total() const { return total_; }
    std::vector<std::string> entries() const { return entries_; }

private:
    int total_ = 0;
    std::vector<std::string> entries_;
};

using MathsType = mp::Registration<"Maths", &mp::construct<MathsClass>, mp::Method<"add", &MathsClass::add>,
                                   mp::Method<"mul", &MathsClass::mul>>;
using LedgerType =
    mp::Registration<"Ledger", &mp::construct<Ledger>, mp::Method<"deposit", &Ledger::deposit>,
                     mp::Method<"total", &Ledger::total>, mp::Method<"entries", &Ledger::entries, "Iterator">>;

class MyManager : public mp::BaseManager {
public:
    MyManager() {
        register_<MathsType>();
        register_<LedgerType>();
    }
};

void depositor(mp::AutoProxy<LedgerType> ledger, std::string who) {
    for (int i = 0; i < 5; ++i) ledger.call<&Ledger::deposit>(who, 5);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    MyManager manager;  // shut down when it goes, as Python's `with` block
    manager.start();
    auto maths = manager.create<MathsType>();
    std::cout << maths.call<&MathsClass::add>(4, 3) << "\n";  // prints 7
    std::cout << maths.call<&MathsClass::mul>(7, 8) << "\n";  // prints 56

    auto ledger = manager.create<LedgerType>();
    std::vector<mp::Process> processes;
    for (const char* who : {"alice", "bob", "carol", "dave"}) processes.emplace_back(depositor, ledger, who);
    for (auto& p : processes) p.start();
    for (auto& p : processes) p.join();
    int entries = 0;
    for (const std::string& entry : ledger.call<&Ledger::entries>()) entries += entry.empty() ? 0 : 1;
    std::cout << "total " << ledger.call<&Ledger::total>() << " in " << entries << " entries\n";
}
