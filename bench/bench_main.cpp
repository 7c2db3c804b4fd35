// bench/bench_main.cpp — the polyproc_bench entry point. Run it through tools/bench-table for the
// comparison with the raw OS primitives and CPython.
#include <cstring>

#include "bench_common.hpp"

int main(int argc, char** argv) {
    // The raw spawn baseline's child (BM_ProcessStartJoin_RawPosixSpawnSelf): exits at once.
    if (argc == 2 && std::strcmp(argv[1], bench::kRawExitFlag) == 0) ::_exit(0);
    mp::init(argc, argv);  // a spawn child or the forkserver runs here and never returns
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
