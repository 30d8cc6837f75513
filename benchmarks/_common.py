"""Shared benchmark machinery: each framework is measured in its own fresh process, as users run it.

Importing tapegrad changes process-wide malloc settings (autograd/allocator.py), PyTorch brings its
own thread pools and allocator, and a model run after a larger one inherits a grown heap, so one
process timing several contenders measures the mix, not what a user gets. A benchmark script is a
*parent* that launches *children* (`--framework tapegrad|torch|numpy`, one case each), alternating
the frameworks over several rounds so a burst of load on a shared machine hits them alike, and
prints each round's ratio and the median. A child pins its threads (environment before import,
threadpoolctl and torch.set_num_threads after), times its case, and reports the BLAS it ran.

Interleaved timing inside one process (`interleaved`, `best_time`) is kept for overhead.py.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("tapegrad", "torch", "numpy")

#: time.perf_counter (wall) by default; BENCH_CLOCK=cpu uses the process's CPU time, which a
#: loaded machine's preemptions do not inflate (it counts every thread of the process).
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def best_time(fn: Callable[[], object], repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """The fastest of `repeat` runs of `number` calls, in seconds per call."""
    return interleaved({"fn": fn}, rounds=repeat, number=number, warmup=warmup)["fn"]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 9, number: int = 1,
                warmup: int = 1) -> dict[str, float]:
    """Seconds per call of each function: the best of `rounds` interleaved rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = CLOCK()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (CLOCK() - start) / number)
    return best


def try_import_torch(threads: int = 2):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


# --- the child: one framework, one case, a fresh process -------------------------------------------
def child_setup(threads: int) -> None:
    """Before NumPy or torch is imported: thread counts for every pool a child may load. The
    OpenBLAS core type and cache sizes are left as the caller's environment has them."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    sys.path.insert(0, str(ROOT))


def pin_threads(threads: int, torch=None) -> dict:
    """Pin the loaded thread pools and describe them: NumPy's BLAS from threadpoolctl
    (internal_api, architecture, num_threads), and torch's thread count and CPU capability."""
    info: dict = {}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(threads)
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
                        for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    if torch is not None:
        torch.set_num_threads(threads)
        info["torch"] = {"num_threads": torch.get_num_threads(),
                         "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                         "mkldnn": torch.backends.mkldnn.is_available()}
    return info


def time_per_call(fn: Callable[[], object], min_time: float = 0.5, blocks: int = 5, warmup: int = 2) -> dict:
    """Seconds per call: `warmup` calls, then `blocks` timed blocks of as many calls as fill
    ~min_time/blocks each (3 blocks of one call for slow calls); the median block (wall clock)
    and its CPU time."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    if once * blocks > 2 * min_time:
        blocks = 3
    number = max(1, int(min_time / blocks / once))
    walls, cpus = [], []
    for _ in range(blocks):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        walls.append((time.perf_counter() - w0) / number)
        cpus.append((time.process_time() - c0) / number)
    i = walls.index(statistics.median_low(walls))
    return {"wall": walls[i], "cpu": cpus[i], "best_wall": min(walls), "number": number}


def sgemm_child(threads: int) -> None:
    """The machine's reference: NumPy float32 1024^3 matmul, GFLOP/s, on the given threads."""
    child_setup(threads)
    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    info = pin_threads(threads)
    seconds = time_per_call(lambda: a @ a, 0.5)["best_wall"]
    child_report({"gflops": 2 * 1024 ** 3 / seconds / 1e9, "info": info})


def timed(fns: dict[str, Callable[[], object]], min_time: float) -> dict:
    """{name: wall seconds per call, name + ':cpu': CPU seconds per call} for each function."""
    out = {}
    for name, fn in fns.items():
        t = time_per_call(fn, min_time / len(fns))
        out[name], out[name + ":cpu"] = t["wall"], t["cpu"]
    return out


def child_report(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent: rounds of fresh children ---------------------------------------------------------
def parent_args(description: str, default_rounds: int, default_threads: Iterable[int]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=FRAMEWORKS, help="child mode: run one framework in this process")
    parser.add_argument("--case", help="child mode: the case to run (default: all, in the parent)")
    parser.add_argument("--threads", type=int, nargs="+", default=list(default_threads),
                        help="thread counts for BLAS / torch (one table per count)")
    parser.add_argument("--rounds", type=int, default=default_rounds,
                        help="fresh-process rounds per framework and case")
    parser.add_argument("--frameworks", nargs="+", default=["tapegrad", "torch"], choices=FRAMEWORKS)
    parser.add_argument("--min-time", type=float, default=0.4, help="seconds of timed calls per child")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="compare wall-clock times (default) or the children's CPU times (steadier on a loaded "
                             "one-thread run; with 2 threads it counts both)")
    parser.add_argument("--log", help="append the children's JSON results to this file (nothing is written otherwise)")
    return parser


def run_child(script: str, framework: str, case: str, threads: int, min_time: float) -> dict:
    cmd = [sys.executable, script, "--framework", framework, "--case", case, "--threads", str(threads),
           "--min-time", str(min_time)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"child {' '.join(cmd[1:])} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_parent(script: str, args, cases: list[str], metrics: list[str], describe: Callable[[str], str]) -> None:
    """For each thread count and case: `rounds` rounds of one fresh child per framework (the order
    alternates between rounds), then per-round ratios torch/tapegrad (>1: tapegrad faster) and
    medians, for every metric the children report (seconds per call)."""
    log = open(args.log, "a") if args.log else None
    frameworks = args.frameworks
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds of fresh processes per framework and case; "
          f"ratio = torch time / tapegrad time (> 1: tapegrad faster), {args.clock} clock, median block per child",
          flush=True)
    for threads in args.threads:
        print(f"\n## threads: {threads}", flush=True)
        sgemm = run_child(script, "numpy", "sgemm", threads, args.min_time)
        print(f"NumPy float32 sgemm 1024^3: {sgemm['gflops']:.1f} GFLOP/s", flush=True)
        infos = {}
        for case in cases:
            results: dict[str, list[dict]] = {f: [] for f in frameworks}
            for r in range(args.rounds):
                order = frameworks if r % 2 == 0 else frameworks[::-1]
                for fw in order:
                    res = run_child(script, fw, case, threads, args.min_time)
                    results[fw].append(res)
                    infos.setdefault(fw, res.get("info"))
                    if log:
                        log.write(json.dumps({"case": case, "threads": threads, "framework": fw, "round": r,
                                              **res}) + "\n")
            keys = metrics if args.clock == "wall" else [m + ":cpu" for m in metrics]
            _print_case(case, describe(case), results, keys, frameworks)
        for fw, info in infos.items():
            print(f"  {fw} ran: {json.dumps(info)}")
    if log:
        log.close()


def _print_case(case: str, label: str, results: dict[str, list[dict]], metrics: list[str], frameworks) -> None:
    print(f"\n{label}", flush=True)
    for m in metrics:
        med = {f: statistics.median(r[m] for r in results[f]) for f in frameworks if results[f] and m in results[f][0]}
        cells = "  ".join(f"{f} {v * 1e3:8.3f} ms" for f, v in med.items())
        line = f"  {m:8s} {cells}"
        if "tapegrad" in med and "torch" in med:
            rounds = [t[m] and t2[m] / t[m] for t, t2 in zip(results["tapegrad"], results["torch"])]
            ratios = " ".join(f"{x:.2f}" for x in rounds)
            line += f"  rounds [{ratios}]  median ratio {statistics.median(rounds):.2f}x"
        print(line, flush=True)
