"""The Program listings in docs/compile.md, made from the code as it is.

    python docs/tools/compile_listing.py          # rewrite the four blocks in docs/compile.md
    python docs/tools/compile_listing.py --check  # exit 1 if they are stale (tests/autograd/test_program.py runs this)

The blocks: the digits training step traced on its first call (before the passes), what
`simplify()` reported, `diff before after`, and the listing after the passes.
"""
from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compile.md"
BLOCK = re.compile(r"(<!-- listing:(\w+) -->\n```text\n)(.*?)(```)", re.S)


def listings() -> dict[str, str]:
    """{block name: text} for the digits step: conv + BN + ReLU, maxpool, linear; cross-entropy,
    clip_grad_value_(0.5) and Adam, batch 32, traced on the first step (no gradients yet)."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import autograd as ag
    import nn
    import optim
    from tapegrad.models import build_model

    model = build_model("digits", (1, 20, 20), 10, seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optim.clip_grad_value_(model.parameters(), 0.5)
        opt.step()
        return loss

    rng = np.random.default_rng(0)
    x = ag.tensor(rng.random((32, 1, 20, 20), dtype=np.float32))
    y = ag.tensor(rng.integers(0, 10, 32))
    model.train()
    program = ag.trace(step, x, y, state=[model, opt])
    before = str(program)
    report = program.simplify()
    after = str(program)
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", n=0, lineterm="")
    return {"before": before + "\n", "report": "\n".join(report) + "\n", "diff": "\n".join(diff) + "\n",
            "after": after + "\n"}


def render(text: str, blocks: dict[str, str]) -> str:
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group(2)] + m.group(4), text)


def main() -> int:
    text = DOC.read_text()
    new = render(text, listings())
    if "--check" in sys.argv:
        if new != text:
            print("docs/compile.md: the Program listings are stale; run python docs/tools/compile_listing.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
