"""mpi4py.futures doing what bench/mpi_map_bench.cpp does, under the same mpiexec (tools/bench-table --filter MPI):
    mpiexec -n 3 python3 -m mpi4py.futures bench/mpi4py_map_bench.py [N1] [N_DEFAULT] [REPS]
One JSON object per line."""
import json
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def twice(x):
    return 2 * x


def spin(rounds):
    """A fixed amount of arithmetic (as bench/mpi_map_bench.cpp's spin)."""
    x = 0
    for _ in range(rounds):
        for i in range(1000):
            x += i ^ (x >> 3)
    return x & 1


def time_one(rounds):
    t0 = time.perf_counter()
    spin(rounds)
    return time.perf_counter() - t0


def main():
    n1 = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    n_default = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with MPIPoolExecutor() as ex:
        workers = ex.num_workers if hasattr(ex, "num_workers") else (ex.bootup() and MPI.COMM_WORLD.Get_size() - 1)
        for chunked in (False, True):
            n = n_default if chunked else n1
            xs = list(range(n))
            chunksize = max(1, -(-n // (4 * workers))) if chunked else 1
            best = 1e9
            for _ in range(reps):
                t0 = time.perf_counter()
                out = list(ex.map(twice, xs, chunksize=chunksize))
                best = min(best, time.perf_counter() - t0)
                assert out[-1] == 2 * (n - 1)
            print(json.dumps({"bench": "map_tasks_per_s", "chunksize": chunksize, "value": round(n / best)}), flush=True)
        rounds = 1
        while time_one(rounds) < 0.02:
            rounds *= 2
        rounds = max(1, int(rounds * 0.050 / time_one(rounds)))
        one = time_one(rounds)
        jobs = [rounds] * (8 * workers)
        best = 1e9
        for _ in range(reps):
            t0 = time.perf_counter()
            list(ex.map(spin, jobs, chunksize=1))
            best = min(best, time.perf_counter() - t0)
        ideal = len(jobs) * one / workers
        print(json.dumps({"bench": "cpu_bound_efficiency", "workers": workers, "value": round(ideal / best, 3)}), flush=True)


if __name__ == "__main__":
    main()
