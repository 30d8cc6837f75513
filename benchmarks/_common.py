"""Shared benchmark machinery: each framework is measured in its own fresh process, as users run it.

Importing tapegrad changes process-wide malloc settings (autograd/allocator.py), PyTorch brings its
own thread pools and allocator, and a model run after a larger one inherits a grown heap, so one
process timing several contenders measures the mix, not what a user gets. A benchmark script is a
*parent* that launches *children* (`--framework NAME --case CASE`, one framework and case each),
alternating the frameworks' order over several rounds so a burst of load on a shared machine hits
them alike, and prints each round's ratio PyTorch time / framework time and the median. A child pins
its threads (environment before import, threadpoolctl and torch.set_num_threads after), times its
case, and reports the BLAS it ran.

Framework names: `tapegrad` (eager), `compiled` (tapegrad with autograd.compile), `torch`, `numpy`
(a script's floor), and for the tapegrad ones a `-nomallopt` variant (`tapegrad-nomallopt`), which
runs with TAPEGRAD_KEEP_FREED_MEMORY=0: without the import-time mallopt of autograd/allocator.py.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
NOMALLOPT = "-nomallopt"
TAPEGRAD_FRAMEWORKS = ("tapegrad", "compiled")


@dataclass(frozen=True)
class Metric:
    """One figure a child reports: `key` in its RESULT, printed as value * scale with `unit`.
    Times (timed=True) follow --clock and get the ratio PyTorch / framework per round."""

    key: str
    scale: float = 1e3
    unit: str = "ms"
    timed: bool = True
    label: str = ""  # the column's heading; default "key (unit)"


# --- the child: one framework, one case, a fresh process -------------------------------------------
def child_setup(threads: int, framework: str = "") -> str:
    """Before NumPy, torch or tapegrad is imported: thread counts for every pool a child may load,
    and for a `-nomallopt` framework TAPEGRAD_KEEP_FREED_MEMORY=0. Returns the framework without
    the suffix. The OpenBLAS core type and cache sizes are left as the caller's environment has them."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if framework.endswith(NOMALLOPT):
        os.environ["TAPEGRAD_KEEP_FREED_MEMORY"] = "0"
        framework = framework[: -len(NOMALLOPT)]
    sys.path.insert(0, str(ROOT))
    return framework


def pin_threads(threads: int, torch=None) -> dict:
    """Pin the loaded thread pools and describe them: NumPy's BLAS from threadpoolctl
    (internal_api, architecture, num_threads), torch's thread count and CPU capability, and
    tapegrad's thread count and whether its mallopt is on (when tapegrad is loaded)."""
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
    if "autograd" in sys.modules:
        import autograd

        autograd.set_num_threads(threads)  # tapegrad's own splits (autograd/parallel.py), like torch's
        info["keep_freed_memory"] = os.environ.get("TAPEGRAD_KEEP_FREED_MEMORY", "1") != "0"
        info["tapegrad_threads"] = autograd.get_num_threads()
    return info


def time_per_call(fn: Callable[[], object], min_time: float = 0.5, blocks: int = 5, warmup: int = 2) -> dict:
    """Seconds per call: `warmup` calls, then `blocks` timed blocks of as many calls as fill
    ~min_time/blocks each (3 blocks of one call for slow calls); the median block (wall clock)
    and its CPU time, and the minor page faults per call over all blocks."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    if once * blocks > 2 * min_time:
        blocks = 3
    number = max(1, int(min_time / blocks / once))
    walls, cpus = [], []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(blocks):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        walls.append((time.perf_counter() - w0) / number)
        cpus.append((time.process_time() - c0) / number)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (blocks * number)
    i = walls.index(statistics.median_low(walls))
    return {"wall": walls[i], "cpu": cpus[i], "best_wall": min(walls), "number": number, "minflt": faults}


def timed(fns: dict[str, Callable[[], object]], min_time: float, warmup: int = 2) -> dict:
    """{name: wall seconds per call, name + ':cpu': CPU seconds per call, name + ':minflt': minor
    page faults per call} for each function, and the process's peak RSS in MB."""
    out = {}
    for name, fn in fns.items():
        t = time_per_call(fn, min_time / len(fns), warmup=warmup)
        out[name], out[name + ":cpu"], out[name + ":minflt"] = t["wall"], t["cpu"], t["minflt"]
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def sgemm_child(threads: int) -> None:
    """The machine's reference: NumPy float32 1024^3 matmul, GFLOP/s, on the given threads."""
    child_setup(threads)
    import numpy as np

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    info = pin_threads(threads)
    seconds = time_per_call(lambda: a @ a, 0.5)["best_wall"]
    child_report({"gflops": 2 * 1024 ** 3 / seconds / 1e9, "info": info})


def child_report(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent: rounds of fresh children ---------------------------------------------------------
def parent_args(description: str, default_rounds: int, default_threads: Iterable[int], frameworks: Sequence[str],
                default_frameworks: Sequence[str], default_min_time: float = 0.4) -> argparse.ArgumentParser:
    """The protocol's options. `frameworks` are the script's; tapegrad ones also take `-nomallopt`."""
    choices = list(frameworks) + [f + NOMALLOPT for f in frameworks if f in TAPEGRAD_FRAMEWORKS]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=sorted(set(choices) | {"numpy"}),  # numpy: the sgemm child
                        help="child mode: run one framework in this process")
    parser.add_argument("--case", nargs="+", help="the cases to run (default: the script's defaults); "
                                                  "child mode: exactly one")
    parser.add_argument("--threads", type=int, nargs="+", default=list(default_threads),
                        help="thread counts for BLAS / torch (one table per count)")
    parser.add_argument("--rounds", type=int, default=default_rounds,
                        help="fresh-process rounds per framework and case")
    parser.add_argument("--frameworks", nargs="+", default=list(default_frameworks), choices=choices)
    parser.add_argument("--min-time", type=float, default=default_min_time, help="seconds of timed calls per child")
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


Medians = dict[str, dict[str, float]]  # framework -> metric key -> median over rounds


def run_parent(script: str, args, cases: list[str], metrics: Sequence[Metric | str], describe: Callable[[str], str],
               derived: Callable[[str, Medians], list[str]] | None = None) -> None:
    """For each thread count and case: `rounds` rounds of one fresh child per framework (the order
    alternates between rounds), then every metric's median per framework and, for times, the
    per-round ratios PyTorch time / framework time (> 1: that framework faster) and their median.
    `derived(case, medians)` may add lines (ratios within one framework)."""
    metrics = [m if isinstance(m, Metric) else Metric(m) for m in metrics]
    log = open(args.log, "a") if args.log else None
    frameworks = args.frameworks
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds of fresh processes per framework and case "
          f"(order alternating); ratio = torch time / framework time (> 1: that framework faster), "
          f"{args.clock} clock, median block per child", flush=True)
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
                                              "clock": args.clock, **res}) + "\n")
                        log.flush()
            medians = _print_case(describe(case), results, metrics, args.clock)
            for line in derived(case, medians) if derived else ():
                print(f"  {line}", flush=True)
        for fw, info in infos.items():
            print(f"  {fw} ran: {json.dumps(info)}")
    if log:
        log.close()


def _print_case(label: str, results: dict[str, list[dict]], metrics: list[Metric], clock: str) -> Medians:
    """One row per framework: each metric's median, then for each time its per-round ratios
    torch / framework and their median."""
    print(f"\n{label}", flush=True)
    keys = {m.key: m.key + ":cpu" if m.timed and clock == "cpu" else m.key for m in metrics}
    medians: Medians = {f: {m.key: statistics.median(r[keys[m.key]] for r in rs) for m in metrics
                            if keys[m.key] in rs[0]} for f, rs in results.items() if rs}
    shown = [m for m in metrics if any(m.key in v for v in medians.values())]
    ratios = [m for m in shown if m.timed and m.key in medians.get("torch", {})]
    width = max(len(f) for f in medians) + 2
    heads = [m.label or f"{m.key} ({m.unit})" for m in shown]
    cols = [max(len(h) + 3, 12) for h in heads]
    head = "".join(f"{h:>{c}s}" for h, c in zip(heads, cols))
    head += "".join(f"   torch/framework, {m.key}: rounds, median" for m in ratios)
    print(f"  {'':{width}s}{head}", flush=True)
    for f, med in medians.items():
        row = "".join(f"{med[m.key] * m.scale:{c}.4g}" if m.key in med else f"{'-':>{c}s}" for m, c in zip(shown, cols))
        for m in ratios:
            if f == "torch" or m.key not in med:
                continue
            per_round = [t[keys[m.key]] / o[keys[m.key]] if o[keys[m.key]] else float("nan")
                         for o, t in zip(results[f], results["torch"])]
            row += f"   [{' '.join(f'{x:.2f}' for x in per_round)}] {statistics.median(per_round):.2f}x"
        print(f"  {f:{width}s}{row}", flush=True)
    return medians
