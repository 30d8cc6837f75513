"""Memory of a training step: peak RSS, minor page faults per step and step time, tapegrad eager and
compiled, each with and without the import-time mallopt (autograd/allocator.py;
`-nomallopt` = TAPEGRAD_KEEP_FREED_MEMORY=0), and PyTorch eager.

The steps, cases and fresh-process protocol are train_step.py's (whose default run gives the step
times of eager, compiled and PyTorch); this script adds the memory figures and the frameworks
without mallopt. Faults are counted over the timed steps after warm-up (so a compiled step's
trace is not in them); peak RSS is the child's, imports included.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compiled_step.py     # digits, escontrela, lenet-bn; 1 thread
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compiled_step.py --case lenet-bn --frameworks tapegrad compiled torch
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import train_step  # noqa: E402

CASES = ["digits", "escontrela", "lenet-bn"]
FRAMEWORKS = ("tapegrad", "compiled", "tapegrad-nomallopt", "compiled-nomallopt", "torch")
METRICS = [C.Metric("step"), C.Metric("step:minflt", 1, timed=False, label="faults/step"),
           C.Metric("maxrss_mb", 1, timed=False, label="peak RSS MB")]


def main() -> None:
    parser = C.parent_args(__doc__, default_rounds=3, default_threads=(1,), frameworks=train_step.FRAMEWORKS,
                           default_frameworks=FRAMEWORKS, default_min_time=0.3)  # ~2 min on a quiet machine
    args = parser.parse_args()
    if args.framework:
        return train_step.child(args.framework, args.case[0], args.threads[0], args.min_time)
    C.run_parent(__file__, args, args.case or CASES, METRICS, train_step.describe)


if __name__ == "__main__":
    main()
