"""mpi4py.futures doing what bench/mpi_map_bench.cpp does, under the same mpiexec (tools/bench-table --filter MPI):
    mpiexec -n 3 python3 -m mpi4py.futures bench/mpi4py_map_bench.py [N] [REPS]
One JSON object per line."""
import json
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def twice(x):
    return 2 * x


def spin(ms):
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        for i in range(1000):
            x += i ^ (x >> 3)
    return x & 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with MPIPoolExecutor() as ex:
        workers = ex.num_workers if hasattr(ex, "num_workers") else (ex.bootup() and MPI.COMM_WORLD.Get_size() - 1)
        xs = list(range(n))
        python_default = max(1, -(-n // (4 * workers)))
        for chunksize in (1, python_default):
            best = 1e9
            for _ in range(reps):
                t0 = time.perf_counter()
                out = list(ex.map(twice, xs, chunksize=chunksize))
                best = min(best, time.perf_counter() - t0)
                assert out[-1] == 2 * (n - 1)
            print(json.dumps({"bench": "map_tasks_per_s", "chunksize": chunksize, "value": round(n / best)}), flush=True)
        jobs = [50] * (8 * workers)
        best = 1e9
        for _ in range(reps):
            t0 = time.perf_counter()
            list(ex.map(spin, jobs, chunksize=1))
            best = min(best, time.perf_counter() - t0)
        ideal = len(jobs) * 0.050 / workers
        print(json.dumps({"bench": "cpu_bound_efficiency", "workers": workers, "value": round(ideal / best, 3)}), flush=True)


if __name__ == "__main__":
    main()
