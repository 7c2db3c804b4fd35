// Must NOT compile: a struct holding a std::string is not trivially copyable and has no serialize().
#include <polyproc/polyproc.hpp>
#include <string>
struct Person {
    std::string name;
    int age;
};
int main() {
    auto [a, b] = polyproc::Pipe();
    (void)b.recv<Person>();
}
