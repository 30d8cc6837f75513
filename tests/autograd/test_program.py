"""The Program as data: its listing, its passes (each reports what it removed), its drawing."""
import numpy as np

import autograd as ag
import nn
import optim


def _mlp_step():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    opt = optim.Adam(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x = ag.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y = ag.tensor(np.array([0, 1, 1, 0, 1]))
    return step, x, y


def test_the_listing_has_one_line_per_equation_with_types_and_state_names():
    step, x, y = _mlp_step()
    program = ag.trace(step, x, y)
    text = str(program)
    lines = text.splitlines()
    eqn_lines = [ln for ln in lines if " = " in ln]
    assert len(eqn_lines) == len(program.eqns)
    assert lines[0].startswith("{ lambda x0:f32[5,4] x1:i64[5]")
    assert "0.weight:f32[3,4]" in text and "2.bias:f32[2]" in text
    assert any("= matmul " in ln for ln in eqn_lines)
    assert sum("Adam.update" in ln for ln in eqn_lines) == 4  # one per parameter
    assert "writes" in text and "0.weight.grad <- " in text


def test_dead_code_is_removed_and_reported():
    x = ag.tensor(np.ones((2, 3), np.float32))

    def f(x):
        unused = ag.exp(x) * 2  # noqa: F841
        return x + 1

    program = ag.trace(f, x)
    assert {e.name for e in program.eqns} >= {"exp", "mul", "add"}
    report = ag.program.dce(program)
    assert report == ["dead code: removed 2 equation(s) (exp x1, mul x1)"]
    assert [e.name for e in program.eqns] == ["add"]
    assert np.array_equal(program.prepare().run([np.ones((2, 3), np.float32)])[0], np.full((2, 3), 2, np.float32))


def test_common_subexpressions_are_merged_and_reported():
    def f(x, y):
        return (x * y) + (x * y)

    x, y = ag.tensor(np.arange(3.0)), ag.tensor(np.ones(3))
    program = ag.trace(f, x, y)
    report = ag.program.cse(program)
    assert report == ["common subexpressions: removed 1 equation(s) (mul x1)"]
    (out,) = program.prepare().run([np.arange(3.0), np.full(3, 2.0)])
    assert np.array_equal(out, np.arange(3.0) * 4)


def test_reshape_and_transpose_chains_fold():
    def f(x):
        a = ag.reshape(ag.reshape(x, (6,)), (3, 2))
        b = ag.transpose(ag.transpose(x, (1, 0)), (1, 0))
        return a.sum() + b.sum() + ag.reshape(x, (2, 3)).sum()

    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    program = ag.trace(f, x)
    report = program.simplify()
    assert report == ["shape folding: removed 2 equation(s) (reshape (chain) x1, transpose (chain) x1)",
                      "common subexpressions: removed 1 equation(s) (sum x1)",  # b is x again: b.sum() is x.sum()
                      "dead code: removed 2 equation(s) (reshape x1, transpose x1)"]
    assert sum(e.name == "transpose" for e in program.eqns) == 0
    assert sum(e.name == "reshape" for e in program.eqns) == 1
    (out,) = program.prepare().run([np.arange(6.0).reshape(2, 3) * 2])
    assert out == 3 * 30.0


def test_constants_fold_and_the_replay_still_reads_inputs():
    def f(x):
        scale = ag.exp(ag.tensor(np.zeros(3))) * 2  # no input involved: folded to a constant
        return x * scale

    program = ag.trace(f, ag.tensor(np.ones(3)))
    report = ag.program.fold_constants(program)
    assert report == ["constant folding: removed 3 equation(s) (exp x1, mul x1, np.zeros x1)"]
    assert [e.name for e in program.eqns] == ["mul"]
    (out,) = program.prepare().run([np.arange(3.0)])
    assert np.array_equal(out, np.arange(3.0) * 2)


def test_simplify_keeps_a_training_step_equal(tmp_path):
    step, x, y = _mlp_step()
    program = ag.trace(step, x, y)
    n = len(program.eqns)
    report = program.simplify()
    assert len(program.eqns) < n and report
    assert "Adam.update" in str(program)


def test_viz_draws_a_program():
    step, x, y = _mlp_step()
    program = ag.trace(step, x, y)
    graph = ag.viz.draw(program)
    source = graph.source
    assert "matmul" in source and "Adam.update" in source and "0.weight" in source
    assert source.count("->") >= len(program.eqns)


def test_the_example_in_docs_compile_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "compile.md").read_text()
    ns: dict = {}
    exec(re.findall(r"```python\n(.*?)```", text, re.S)[0], ns)
    assert ns["step"].traces == 1
    out = capsys.readouterr().out
    assert "writes 0.weight.grad <- " in out and "Adam.update" in out


def test_the_listings_in_docs_compile_are_the_current_programs():
    """docs/compile.md shows the digits step's Program before and after the passes; regenerate with
    `python docs/tools/compile_listing.py` when the ops or passes change."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "docs" / "tools" / "compile_listing.py"
    done = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_passes_drop_the_unit_factor_and_the_gradient_copies_and_replay_stays_exact():
    """backward's seed of ones and its copies of leaf gradients are not needed in a Program."""
    step, x, y = _mlp_step()
    program = ag.trace(step, x, y)
    names = [e.name for e in program.eqns]
    assert "ones_like" in names and names.count("np.array") >= 1
    report = "\n".join(program.simplify())
    names = [e.name for e in program.eqns]
    assert "ones_like" not in names
    # what stays copies a gradient into its parameter's layout (the weights' come out transposed)
    kept = [e for e in program.eqns if e.name == "np.array"]
    assert kept and all(e.kwargs == {"copy": True, "order": "C"} for e in kept), kept
    assert "unit factors" in report and "copies" in report
    compiled = ag.compile(_mlp_step()[0], verify=3)  # replay and eager side by side: raises if they differ
    for _ in range(5):
        compiled(x, y)
    assert compiled.traces == 1
