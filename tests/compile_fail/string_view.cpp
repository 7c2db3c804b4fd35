// Must NOT compile: a string_view is a pointer and a length; send a std::string instead.
#include <polyproc/polyproc.hpp>
#include <string_view>
int main() {
    auto [a, b] = polyproc::Pipe();
    a.send(std::string_view("hello"));
}
