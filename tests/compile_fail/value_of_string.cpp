// Must NOT compile: a std::string owns heap memory that other processes cannot see.
#include <polyproc/polyproc.hpp>
#include <string>
int main() {
    polyproc::Value<std::string> v("text");
    (void)v;
}
