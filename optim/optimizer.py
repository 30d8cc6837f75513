"""`Optimizer`: parameter groups, per-parameter state, zero_grad, and PyTorch-shaped state dicts.

Subclasses write one method, `_update(p, g, state, group)`, that changes the ndarray `p` in place
from the gradient array `g`. The base class does the rest once: it skips parameters without a
gradient, hands the gradient over in the parameter's dtype (float32 stays float32), runs the update
under `no_grad`, and bumps the parameter's version counter so that a graph which saved the old value
refuses to backward through it.

Updates are NumPy in-place ops on whole arrays (`out=`), never Tensor ops: a step records nothing
and allocates little. Mind 0-d parameters: NumPy arithmetic on 0-d arrays returns scalars, so every
array kept in `state` or written in place is made with `out=` or `np.array(...)`.
"""
from __future__ import annotations

import functools

import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from autograd import Tensor, enable_grad, no_grad
from autograd.graph import mark_modified
from autograd.capture import is_tracing, note_grads_dropped, opaque
from autograd.errors import ShapeError, fmt_shape

from . import _args as A

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def ema_square_(avg: np.ndarray, g: np.ndarray, decay: float) -> np.ndarray:
    """avg <- decay * avg + (1 - decay) * g**2, in place: Adam's second moment, RMSprop's square_avg.
    Returns its scratch array (avg's shape and dtype) for the caller to reuse."""
    tmp = np.multiply(g, g, out=np.empty_like(avg))  # out=: stays an array for 0-d parameters
    tmp *= 1 - decay
    avg *= decay
    avg += tmp
    return tmp


class Optimizer:
    """Base of every optimizer: holds `param_groups` (dicts of params + options) and `state`.

    A subclass declares its numeric hyperparameters in `_ranges` (name -> allowed range; a tuple
    value such as Adam's betas is checked item by item), and its per-parameter state in
    `_state_required` (keys a non-empty state must have) and `_state_arrays` (keys holding arrays
    of the parameter's shape), so that options and checkpoints are checked in one place."""

    _ranges: dict[str, A.Range] = {"lr": A.LR}
    _state_required: tuple[str, ...] = ()
    _state_arrays: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or of dicts, but got a Tensor "
                "(wrap it in a list: [param])"
            )
        groups = A.params(type(self).__name__, params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- hooks for subclasses -----------------------------------------------------------------
    def _validate(self, options: Mapping[str, Any]) -> None:
        """Raise TypeError/ValueError naming the optimizer for bad hyperparameters (defaults and each
        group, also when loaded from a state dict). Subclasses add rules that tie options together."""
        who = type(self).__name__
        for name, where in self._ranges.items():
            if name not in options:
                continue
            value = options[name]
            if isinstance(value, tuple):
                for i, v in enumerate(value):
                    A.number(who, name, v, where, index=i)
            else:
                A.number(who, name, value, where)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # --- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options; missing options take the defaults."""
        who = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{who}: a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{who}: a param group needs a 'params' entry")
        if isinstance(params, set):
            raise TypeError(f"{who}: optimizer parameters need to be an ordered collection, not a set")
        params = A.params(who, params, "the group's 'params'")
        params = _named(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{who} can only optimize Tensors, but param {i} of the group is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{who} can't optimize a non-leaf Tensor (param {i}, shape {fmt_shape(p.shape)})")
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                f"{who}: a parameter group contains duplicate parameters; each is updated once per duplicate",
                UserWarning,
                stacklevel=2,
            )
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{who}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # --- gradients ----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget gradients: drop them (default, cheapest) or zero them in place."""
        if set_to_none and is_tracing():
            note_grads_dropped([p for group in self.param_groups for p in group["params"]])
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif g._node is not None or not g.data.flags.writeable:
                    p.grad = Tensor._make(np.zeros_like(p.grad.data))  # detach from a create_graph graph
                else:
                    g.data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return `closure()`'s loss if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = self._grad_array(p)
                    if is_tracing():  # compile: one equation that calls _update_one again at every replay
                        opaque(f"{type(self).__name__}.update", functools.partial(self._update_one, p, group),
                               p.data, g)
                    else:
                        self._update_one(p, group, p.data, g)
                    mark_modified(p, f"{type(self).__name__}.step")
        return loss

    def _update_one(self, p: Tensor, group: dict[str, Any], p_array: np.ndarray, g_array: np.ndarray) -> None:
        """One parameter's update. The state and the group's hyperparameters (a scheduler's learning
        rate) are looked up at each call, so a replay reads them then, not at trace time."""
        self._update(p_array, g_array, self.state.setdefault(p, {}), group)

    def _grad_array(self, p: Tensor) -> np.ndarray:
        """The gradient as an ndarray of p's shape and dtype (read-only by contract: never written)."""
        g = p.grad.data
        if g.shape != p.data.shape:
            raise ShapeError(
                f"{type(self).__name__}.step: gradient shape {fmt_shape(g.shape)} does not match parameter shape "
                f"{fmt_shape(p.data.shape)}"
            )
        if g.dtype != p.data.dtype:
            g = g.astype(p.data.dtype)
        return g

    # --- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: copied array or number}}, 'param_groups': [{options, 'params': [indices]}]}.

        Parameters are numbered in group order, as in PyTorch, so the dict does not refer to tensors.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _copy(v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore options and state saved by `state_dict()`; arrays are copied into the parameters' dtypes.

        Everything is checked before anything changes (no partial load): group and parameter counts,
        indices, option values, and each parameter's state (the keys this optimizer's step needs,
        array shapes, the step count), so a bad checkpoint fails here and not inside `step()`."""
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            keys = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise KeyError(f"{who}: expected a dict with 'state' and 'param_groups', got keys {keys}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(
                isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple)) for g in saved_groups):
            raise ValueError(f"{who}: 'param_groups' must be a list of dicts, each with a 'params' list of indices")
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{who}: 'state' must be a dict {{parameter index: {{name: value}}}}, got "
                             f"{type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{who}: loaded state dict has {len(saved_groups)} parameter groups, this optimizer has "
                f"{len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{who}: parameter group {i} has {len(saved['params'])} parameters in the loaded state dict "
                    f"but {len(group['params'])} in this optimizer"
                )
            for k, p in zip(saved["params"], group["params"]):
                k = A.integer(who, f"parameter index in group {i}", k, minimum=0)
                if k in by_index:
                    raise ValueError(f"{who}: parameter index {k} is listed twice in 'param_groups'")
                by_index[k] = p
        new_state: dict[Tensor, dict[str, Any]] = {}
        for k, values in saved_state.items():
            p = by_index.get(k if isinstance(k, (int, np.integer)) else _int_or_none(k))
            if p is None:
                raise ValueError(f"{who}: state for parameter index {k!r}, which no parameter group lists")
            new_state[p] = self._checked_state(who, k, p, values)
        merged = [
            group | {k: v for k, v in saved.items() if k != "params"}
            for group, saved in zip(self.param_groups, saved_groups)
        ]
        for group in merged:
            self._validate(group)
        for group, options in zip(self.param_groups, merged):
            group.update(options)
        self.state = new_state

    def _checked_state(self, who: str, k: Any, p: Tensor, values: Any) -> dict[str, Any]:
        """One parameter's saved state, checked against what `_update` reads, with arrays copied."""
        if not isinstance(values, Mapping):
            raise ValueError(f"{who}: state of parameter {k} must be a dict, got {type(values).__name__}")
        missing = [name for name in self._state_required if name not in values]
        if values and missing:
            raise ValueError(f"{who}: state of parameter {k} lacks {', '.join(map(repr, missing))} (has "
                             f"{sorted(values)}); {type(self).__name__} needs {list(self._state_required)}")
        entry = {}
        for name, v in values.items():
            if name == "step":
                step = np.asarray(v.data if isinstance(v, Tensor) else v)
                if step.shape != () or step.dtype.kind not in "iuf" or not (step >= 0 and step == np.floor(step)):
                    raise ValueError(f"{who}: state 'step' of parameter {k} must be a whole number >= 0, got {v!r}")
                v = step.copy() if isinstance(v, (np.ndarray, Tensor)) else v
            elif isinstance(v, (np.ndarray, Tensor)) or name in self._state_arrays:
                arr = np.asarray(v.data if isinstance(v, Tensor) else v)
                if arr.dtype.kind not in "iuf":
                    raise ValueError(f"{who}: state '{name}' of parameter {k} must be a numeric array, got {arr.dtype}")
                if arr.shape != p.shape and (arr.ndim or name in self._state_arrays):
                    raise ShapeError(
                        f"{who}: state '{name}' of parameter {k} has shape {fmt_shape(arr.shape)}, the parameter "
                        f"has shape {fmt_shape(p.shape)}"
                    )
                v = arr.astype(p.dtype) if arr.ndim or name in self._state_arrays else arr.copy()
            entry[name] = v
        return entry

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        lines.append(")")
        return "\n".join(lines)


def _int_or_none(k: Any) -> int | None:
    """A state key saved as text ('0', as JSON would) -> 0; anything else -> None."""
    try:
        return int(k)
    except (TypeError, ValueError):
        return None


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def _named(params: list) -> list:
    """Accept `model.named_parameters()` (name, tensor) pairs, as PyTorch 2.6 does; an unnamed
    parameter takes the name, so in-place errors can say which parameter a step changed."""
    if not params or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params):
        return params
    for name, p in params:
        if isinstance(p, Tensor) and p.name is None:
            p.name = name
    return [p for _, p in params]
