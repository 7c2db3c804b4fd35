// bench/bench_main.cpp — the polyproc_bench entry point. Run it through tools/bench-table for the
// comparison with the raw OS primitives and CPython.
#include "bench_common.hpp"

int main(int argc, char** argv) {
    mp::init(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
