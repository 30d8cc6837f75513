"""`export`: trace a model's eval-mode forward and write the recorded graph as an ONNX model.

Reading order: trace twice (trace.py), find the calls of known modules (patterns.py), translate
everything else primitive by primitive (table.py), then name inputs, outputs and initializers.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from ..fileio import atomic_write
from ..introspect import LeafInfo, NodeInfo, Record
from ..tensor import Tensor
from . import trace as T
from .graph import BatchDim, ExportError, Graph, onnx_dtype
from .patterns import PATTERNS, Call
from .table import TRANSLATIONS, Site

#: the opset written when none is asked for; MIN_OPSET is the oldest the table can write
DEFAULT_OPSET = 17
MIN_OPSET = 17


def export(
    model_or_fn: Any,
    example_inputs: Any,
    path: str | os.PathLike | None,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
    patterns: bool = True,
) -> onnx.ModelProto:
    """Write `model_or_fn(*example_inputs)` as an ONNX model at `path` (None: only return it).

    A Module is traced in eval mode (batch norm with its running statistics, dropout off) and put back
    in its own mode afterwards; its parameters become initializers named by their module paths
    (`block1.conv.weight`). With `dynamic_batch`, axis 0 of every input and output is the symbolic
    dim `batch`. `patterns=False` translates every primitive one by one (no Conv, Gemm, ... nodes).
    Raises ExportError naming the primitive and the user's line for what cannot be exported.
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"onnx export: opset {opset} is not supported (choose {MIN_OPSET} to "
                         f"{onnx.defs.onnx_opset_version()})")
    arrays = _example_arrays(example_inputs, dynamic_batch)
    module = model_or_fn if hasattr(model_or_fn, "named_parameters") else None
    with _eval_mode(module):
        if dynamic_batch and arrays[0].shape[0] < 2:  # trace at batch >= 2: layouts may differ at batch 1
            arrays = [np.concatenate([a, a]) for a in arrays]
        first = T.run(model_or_fn, arrays, module)
        second = T.run(model_or_fn, T.second_inputs(arrays, dynamic_batch), module)
        seen = T.compare(first, second, dynamic=dynamic_batch)
        model = _Builder(first, seen, module, opset, input_names, output_names, dynamic_batch, patterns).build()
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        atomic_write(path, model.SerializeToString())  # a crash never leaves half a model
    return model


def _example_arrays(example_inputs: Any, dynamic: bool) -> list[np.ndarray]:
    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    if not items:
        raise ValueError("onnx export: example_inputs is empty")
    arrays = [np.asarray(x.data if isinstance(x, Tensor) else x) for x in items]
    for i, a in enumerate(arrays):
        if a.dtype.kind != "f":
            raise ExportError(f"onnx export: example input {i} has dtype {a.dtype}; only floating-point inputs "
                              "can be traced")
        if dynamic and (a.ndim == 0 or a.shape[0] != arrays[0].shape[0]):
            raise ExportError(f"onnx export: example input {i} has shape {a.shape}; every input needs the same "
                              f"batch axis 0 ({arrays[0].shape[0]} in input 0)")
    return arrays


class _eval_mode:
    """Eval mode and parameters requiring grad (so every op is recorded) during the traces; then back."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __enter__(self) -> None:
        if self.module is None:
            self.modes, self.grads = [], []
            return
        self.modes = [(m, m.training) for _, m in self.module.named_modules()]
        self.grads = [(p, p.requires_grad) for p in self.module.parameters()]
        self.module.eval()
        for p, _ in self.grads:
            p.requires_grad = True

    def __exit__(self, *exc: Any) -> None:
        for m, mode in self.modes:
            m.training = mode
        for p, flag in self.grads:
            p.requires_grad = flag


class _Builder:
    """One trace + its dims -> an ONNX ModelProto."""

    def __init__(self, tr: T.Trace, seen: T.Comparison, module: Any, opset: int,
                 input_names: Sequence[str] | None, output_names: Sequence[str] | None, dynamic: bool,
                 use_patterns: bool) -> None:
        self.tr, self.dims, self.module, self.dynamic = tr, seen.dims, module, dynamic
        self.seen = seen
        n_in, n_out = len(tr.inputs), len(tr.outputs)
        self.input_names = _names(input_names, n_in, "input")
        self.output_names = _names(output_names, n_out, "output")
        self.g = Graph(opset, self.input_names[0])
        for name in self.input_names:
            self.g.claim(name)
        self.values: dict[int, str] = {}  # record id -> ONNX value
        self.by_id = {r.id: r for r in tr.records}
        self.param_names = {id(p): n for n, p in module.named_parameters()} if module is not None else {}
        self.params: dict[int, str] = {}  # id(tensor) -> initializer
        self.buffers: dict[str, str] = {}
        self.calls = _find_calls(tr, module) if use_patterns and module is not None else {}

    # --- values ----------------------------------------------------------------------------------
    def value(self, rid: int) -> str:
        if rid not in self.values:
            r = self.by_id[rid]
            assert isinstance(r, LeafInfo), f"record {rid} ({r.op}) used before it was translated"
            k = self.tr.input_index(r)
            if k is not None:
                self.values[rid] = self.input_names[k]
            elif r.is_param:
                self.values[rid] = self.param(r.tensor, r.name)
            elif rid in self.seen.problems:
                raise ExportError(self.seen.problems[rid])
            else:
                value = self.seen.broadcasts.get((rid, None), r.tensor.data)
                self.values[rid] = self.g.constant(value, hint="const")
        return self.values[rid]

    def param(self, tensor: Any, name: str | None = None) -> str:
        key = id(tensor)
        if key not in self.params:
            self.params[key] = self.g.initializer(tensor.data, self.g.fresh(self.param_names.get(key, name or "param")))
        return self.params[key]

    def buffer(self, name: str, array: np.ndarray) -> str:
        if name not in self.buffers:
            self.buffers[name] = self.g.initializer(array, self.g.fresh(name))
        return self.buffers[name]

    # --- translation -------------------------------------------------------------------------------
    def build(self) -> onnx.ModelProto:
        deferred: dict[int, list[NodeInfo]] = {}  # call output id -> its members, skipped so far
        for r in self.tr.records:
            if not isinstance(r, NodeInfo):
                continue
            call = self.calls.get(r.id)
            if call is None:
                self.translate(r)
                continue
            members, x_id, y_id, module, path = call
            deferred.setdefault(y_id, []).append(r)
            if r.id != y_id:
                continue
            out = self.apply_pattern(module, path, x_id, y_id)
            if out is None:  # the pattern does not fit: the call's primitives one by one
                for m in deferred.pop(y_id):
                    self.translate(m)
            else:
                self.values[y_id] = out
        outputs = self.name_outputs()
        graph = helper.make_graph(self.g.nodes, "tapegrad", self.graph_inputs(), outputs, self.g.initializers)
        opsets = [helper.make_opsetid("", self.g.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="tapegrad",
                                  producer_version="autograd.onnx")
        model.ir_version = helper.find_min_ir_version_for(opsets)  # the oldest runtimes that can read it
        return model

    def translate(self, r: NodeInfo) -> None:
        fn = TRANSLATIONS.get(r.op)
        where = T.where(r)
        if fn is None:
            raise ExportError(f"onnx export: primitive '{r.op}' has no ONNX translation{where}; register one with "
                              f"autograd.onnx.translates({r.op!r})")
        if r.id in self.seen.problems:
            raise ExportError(self.seen.problems[r.id])
        args = list(r.node.args)
        in_dims, in_dtypes = [], []
        for k, (rid, a) in enumerate(zip(r.inputs, args)):
            if rid is None:
                wide = self.seen.broadcasts.get((r.id, k))
                in_dims.append(tuple(np.shape(a)) if wide is None else wide.dims)
                in_dtypes.append(np.asarray(a).dtype)
                args[k] = a if wide is None else wide
            else:
                in_dims.append(self.dims[rid])
                in_dtypes.append(np.dtype(self.by_id[rid].dtype))
        scope = r.scope[-1][0] if r.scope else ""
        site = Site(r.op, tuple(args), T.params_of(r),
                    tuple(None if rid is None else self.value(rid) for rid in r.inputs), tuple(in_dims),
                    tuple(in_dtypes), self.dims[r.id], np.dtype(r.dtype), self.g,
                    f"{scope}/{r.op}" if scope else r.op, where)
        try:
            self.values[r.id] = fn(site)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"onnx export: {r.op}: {type(exc).__name__}: {exc}{where}") from exc

    def apply_pattern(self, module: Any, path: str, x_id: int, y_id: int) -> str | None:
        kind = type(module).__name__
        x = self.by_id[x_id]
        call = Call(module, path, self.value(x_id), self.dims[x_id], np.dtype(x.dtype), self.dims[y_id], self.g,
                    self.param, self.buffer)
        return PATTERNS[kind](call)

    # --- inputs and outputs ---------------------------------------------------------------------------
    def graph_inputs(self) -> list[onnx.ValueInfoProto]:
        infos = []
        for name, x in zip(self.input_names, self.tr.inputs):
            shape: list[Any] = list(x.shape)
            if self.dynamic:
                shape[0] = "batch"
            infos.append(helper.make_tensor_value_info(name, onnx_dtype(x.dtype), shape))
        return infos

    def name_outputs(self) -> list[onnx.ValueInfoProto]:
        infos = []
        for name, rid in zip(self.output_names, self.tr.outputs):
            src = self.values.get(rid) or self.value(rid)
            self.g.claim(name)
            if not self.g.rename_output(src, name):  # an input, an initializer, or already an output
                self.g.node("Identity", [src], name)
                self.g.nodes[-1].output[0] = name
            shape = [d if isinstance(d, int) else ("batch" if d == BatchDim(1) else repr(d)) for d in self.dims[rid]]
            infos.append(helper.make_tensor_value_info(name, onnx_dtype(self.by_id[rid].dtype), shape))
        return infos


def _names(given: Sequence[str] | None, n: int, stem: str) -> list[str]:
    if given is None:
        return [stem] if n == 1 else [f"{stem}{i}" for i in range(n)]
    names = list(given)
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"onnx export: {stem}_names needs {n} distinct names, got {names!r}")
    return names


def _find_calls(tr: T.Trace, module: Any) -> dict[int, tuple]:
    """Calls of modules that have a pattern: record id -> (members, input id, output id, module, path).

    A call is the set of ops recorded under one scope tuple (each call of a module makes a new one);
    it is a candidate when it reads exactly one value from outside besides its own module's
    parameters and constants, and exactly one of its values is used outside (or is an output).
    """
    modules = dict(module.named_modules())
    groups: dict[int, list[NodeInfo]] = {}
    for r in tr.records:
        if isinstance(r, NodeInfo) and r.node.scope and r.node.scope[-1][1] in PATTERNS:
            groups.setdefault(id(r.node.scope), []).append(r)
    users: dict[int, set[int]] = {}
    for r in tr.records:
        for i in getattr(r, "inputs", ()):
            if i is not None:
                users.setdefault(i, set()).add(r.id)
    outputs = set(tr.outputs)
    by_id = {r.id: r for r in tr.records}
    calls: dict[int, tuple] = {}
    for members in groups.values():
        path, kind = members[0].node.scope[-1]
        owner = modules.get(path)
        if owner is None or type(owner).__name__ != kind:
            continue
        ids = {r.id for r in members}
        own = {id(p) for _, p in owner.named_parameters()}
        outside = {i for r in members for i in r.inputs if i is not None and i not in ids}
        data = [i for i in outside if not _is_constant_leaf(by_id[i], tr)]
        if any(by_id[i].is_param and id(by_id[i].tensor) not in own for i in outside if isinstance(by_id[i], LeafInfo)):
            continue
        leaving = [r.id for r in members if r.id in outputs or users.get(r.id, set()) - ids]
        if len(data) != 1 or len(leaving) != 1:
            continue
        entry = (members, data[0], leaving[0], owner, path)
        for r in members:
            calls[r.id] = entry
    return calls


def _is_constant_leaf(r: Record, tr: T.Trace) -> bool:
    """A parameter or a constant tensor: a leaf that is not a graph input."""
    return isinstance(r, LeafInfo) and tr.input_index(r) is None
