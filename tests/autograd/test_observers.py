"""The engine's seams: observers instead of hook slots, and one mark_modified for in-place changes."""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
from autograd import profiler
from autograd.graph import OBSERVERS, _Mode, mark_modified, observe
from autograd.introspect import record_backward

ROOT = Path(__file__).resolve().parents[2]


def _step():
    """A small forward + create_graph backward; returns the names of the forward ops it ran."""
    x = ag.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    w = ag.tensor([0.5, -1.0, 2.0], requires_grad=True)
    v = ag.tensor(np.ones((2, 3)), requires_grad=True)
    y = ((x * w).tanh() + v.exp()).sum()  # every tensor used once: backward adds no cotangents
    ag.grad(y, [w], create_graph=True)
    return ["mul", "tanh", "exp", "add", "sum"]


class _Counter:
    """A fourth tool, like tracing: counts every apply and VJP event it sees."""

    def __init__(self):
        self.applied, self.vjps = [], 0
        self.obs = observe(on_apply=lambda prim, args, params, out, node, s: self.applied.append(prim.name),
                           on_vjp_end=lambda node, results: self._vjp())

    def _vjp(self):
        self.vjps += 1


@pytest.mark.parametrize("order", list(itertools.permutations(["profile", "anomaly", "record", "counter"])))
def test_every_tool_sees_every_op_in_every_nesting_order(order):
    counter = _Counter()
    prof = profiler.profile()
    tools = {"profile": prof, "anomaly": ag.detect_anomaly(), "record": record_backward(), "counter": counter.obs}
    entered = []
    try:
        for name in order:
            tools[name].__enter__()
            entered.append(name)
        forward_ops = _step()
    finally:
        for name in reversed(entered):
            tools[name].__exit__(None, None, None)
    assert not _Mode.observed and not OBSERVERS.any()
    # the counter saw the forward ops and the VJP's own ops; the profiler counted the forward ops
    assert counter.applied[:len(forward_ops)] == forward_ops
    assert counter.vjps == len(forward_ops)
    assert {n: prof.per_prim[n].count for n in forward_ops} == {n: 1 for n in forward_ops}
    assert sum(p.bwd_count for p in prof.per_prim.values()) == len(forward_ops)


def test_anomaly_still_raises_inside_other_observers():
    with profiler.profile(), record_backward(), ag.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(ag.AnomalyError, match="'log' produced non-finite"):
            ag.log(ag.tensor([-1.0], requires_grad=True)).sum()  # reported when the NaN flows on


def test_no_observer_means_no_flag():
    assert not _Mode.observed
    with observe(on_apply=lambda *a: None) as o:
        assert _Mode.observed and o.active
    assert not _Mode.observed and not o.active


def test_import_with_env_anomaly_leaves_no_context_open():
    code = (
        "import autograd as ag, numpy as np\n"
        "from autograd.graph import OBSERVERS, _Mode\n"
        "from autograd import anomaly\n"
        "assert _Mode.observed and len(OBSERVERS.apply) == 1\n"
        "assert anomaly._ENVIRONMENT_ANOMALY._observer.active\n"
        "np.seterr(all='ignore')\n"
        "try:\n"
        "    ag.log(ag.tensor([-1.0], requires_grad=True)).sum()\n"
        "except ag.AnomalyError:\n"
        "    print('raised')\n"
        "with ag.detect_anomaly():\n"
        "    pass\n"
        "assert len(OBSERVERS.apply) == 1  # the environment's subscription survives a nested block\n"
    )
    env = dict(os.environ, TAPEGRAD_ANOMALY="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "raised"


def test_no_version_bumps_outside_the_graph_layer():
    offenders = []
    for package in ("autograd", "nn", "optim", "tapegrad"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "autograd" / "graph.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"_version\s*(\+=|=\s*\w+\._version\s*\+)", line) or "_bump_version()" in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_mark_modified_notifies_observers_and_names_the_change():
    seen = []
    t = ag.tensor([1.0, 2.0])
    with observe(on_modified=lambda tensor, op: seen.append((tensor is t, op))):
        mark_modified(t, "my_update")
    assert seen == [(True, "my_update")] and t._version == 1
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with ag.no_grad():
        w.data *= 2
        mark_modified(w, "my_update")
    with pytest.raises(ag.GraphError, match=r"changed by 'my_update'"):
        y.backward()


def _inplace_paths():
    """(name, make) pairs: make() returns (loss, change, expected op text); change() edits a saved tensor."""
    import nn
    import optim

    def tensor_op(fn, text):
        def make():
            w = ag.tensor([1.0, 2.0], requires_grad=True)
            h = w * 2
            loss = (h * h).sum()
            return loss, lambda: fn(h), text
        return make

    def optimizer_step():
        lin = nn.Linear(2, 1)
        opt = optim.SGD(lin.parameters(), lr=0.1)
        loss = lin(ag.tensor([[1.0, 2.0]])).sum()
        loss.backward(retain_graph=True)
        return loss, opt.step, "SGD.step"

    def init_():
        lin = nn.Linear(2, 1)
        loss = lin(ag.tensor([[1.0, 2.0]])).sum()
        return loss, lambda: nn.init.zeros_(lin.weight), "nn.init"

    def load_state():
        lin = nn.Linear(2, 1)
        loss = lin(ag.tensor([[1.0, 2.0]])).sum()
        state = {k: v * 0 for k, v in lin.state_dict().items()}
        return loss, lambda: lin.load_state_dict(state), "load_state_dict"

    def double():
        lin = nn.Linear(2, 1)
        loss = lin(ag.tensor([[1.0, 2.0]])).sum()
        return loss, lin.double, "Linear.to(float64)"

    def running_stats():
        bn = nn.BatchNorm1d(2)
        x = ag.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
        loss = (x * bn.running_mean).sum()  # a user's graph that saved a running statistic
        return loss, lambda: bn(x), "batch_norm running statistics"

    def in_place(h):
        with ag.no_grad():
            h += 1

    return [
        ("iadd", tensor_op(in_place, "__iadd__")),
        ("zero_", tensor_op(lambda h: ag.no_grad()(h.zero_)(), "zero_")),
        ("copy_", tensor_op(lambda h: ag.no_grad()(h.copy_)(ag.tensor([0.0, 0.0])), "copy_")),
        ("optimizer step", optimizer_step),
        ("init", init_),
        ("load_state_dict", load_state),
        ("double", double),
        ("batch norm statistics", running_stats),
    ]


@pytest.mark.parametrize("name,make", _inplace_paths(), ids=[n for n, _ in _inplace_paths()])
def test_every_inplace_path_makes_backward_name_the_change(name, make):
    loss, change, text = make()
    change()
    with pytest.raises(ag.GraphError, match="modified in place") as err:
        loss.backward()
    if text is not None:
        assert f"changed by '{text}'" in str(err.value)



def test_named_parameters_let_an_inplace_error_name_the_parameter_and_module():
    import nn
    import optim

    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    loss = model(ag.tensor([[1.0, 2.0]])).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(ag.GraphError) as err:
        loss.backward()
    text = str(err.value)
    assert "changed by 'SGD.step'" in text and re.search(r"'2\.(weight|bias)'", text)
    assert "in module 2 (Linear)" in text
