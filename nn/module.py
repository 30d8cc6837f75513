"""`Parameter` and `Module`: the bookkeeping PyTorch users expect (registration by attribute,
dotted names, state dicts, train/eval), and nothing else: modules own tensors, layers do the maths
through `nn.functional`.

Each module knows its dotted path from the root (`_scope_name`), set when it is attached to a parent,
so `__call__` can tag the ops it records (autograd.graph.module_scope) without walking anything.

Parameters, buffers and children live in their registries (`_parameters`, `_buffers`, `_modules`)
*and* in the instance `__dict__`, so reading `self.weight` in a forward is a plain attribute read
(PyTorch's `__getattr__` fallback costs about 2 us per read). All registration goes through
`__setattr__`/`register_*`/`add_module`/`_forget`, which keep the two in step.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator

import numpy as np

from autograd.capture import is_tracing, note_grads_dropped
from autograd.errors import TapegradError, fmt_shape
from autograd.graph import _Mode, mark_modified, no_grad
from autograd.tensor import DEFAULT_FLOAT, Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight: requires grad unless told otherwise."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=DEFAULT_FLOAT)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(TapegradError, RuntimeError):
    """A state dict that does not fit the module: missing or unexpected keys, or shape mismatches."""


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by `register_forward_*hook`; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class Module:
    """Base class of every layer and model. Subclasses set attributes in `__init__` and define `forward`."""

    training: bool
    _scope_name: str
    _hooked = False  # set on an instance when it gets a forward hook: one read on the hot path

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ reads these dicts, so they must exist first
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_scope_name", "")
        object.__setattr__(self, "_scope_entry", ("", type(self).__name__))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__} is missing the required "forward" function')

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._hooked:
            return self._call_with_hooks(args, kwargs)
        # what `with autograd.graph.module_scope(name, kind):` does, inlined: this is the hot path
        prev = _Mode.scope
        _Mode.scope = prev + (self._scope_entry,)
        try:
            return self.forward(*args, **kwargs)
        finally:
            _Mode.scope = prev

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        prev = _Mode.scope
        _Mode.scope = prev + (self._scope_entry,)
        try:
            out = self.forward(*args, **kwargs)
        finally:
            _Mode.scope = prev
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, args) -> None or new args`, run before forward."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        object.__setattr__(self, "_hooked", True)
        return handle

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """`hook(module, args, output) -> None or new output`, run after forward."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        object.__setattr__(self, "_hooked", True)
        return handle

    # --- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._register(params, name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter '{name}' (nn.Parameter or None expected)"
                )
            self._register(params, name, None)
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._register(self._modules, name, value)
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' (Module or None expected)")
            self._register(self._modules, name, None)
        elif params is not None and name in self._buffers:
            persistent = name not in self._non_persistent_buffers
            self._register(self._buffers, name, _as_buffer(name, value))
            if not persistent:
                self._non_persistent_buffers.add(name)
        else:
            object.__setattr__(self, name, value)

    def _register(self, table: dict, name: str, value: Any) -> None:
        """Put `value` in one registry and the instance dict, removing `name` from everywhere else."""
        self._forget(name)
        table[name] = value
        self.__dict__[name] = value
        if isinstance(value, Module):
            value._set_scope(_join(self._scope_name, name))

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails, i.e. for entries put in a registry by hand
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            entries = d.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        """Drop `name` from every registry and the instance dict before it is registered anew."""
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def _check_new_name(self, name: str, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain \".\", got {name!r}")
        if hasattr(type(self), name):
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_new_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter '{name}' (nn.Parameter or None expected)")
        self._register(self._parameters, name, param)

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """A tensor that is state but not learnable (running statistics); in `state_dict` if persistent."""
        self._check_new_name(name, "buffer")
        self._register(self._buffers, name, _as_buffer(name, tensor))
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name(name, "module")
        self._register(self._modules, name, module)

    register_module = add_module

    def _set_scope(self, name: str) -> None:
        """Give this module and its descendants their dotted path (done at attach time, not per call)."""
        stack, seen = [(self, name)], set()
        while stack:
            module, path = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            object.__setattr__(module, "_scope_name", path)
            object.__setattr__(module, "_scope_entry", (path, type(module).__name__))
            stack.extend((child, _join(path, key)) for key, child in module._modules.items() if child is not None)

    # --- traversal ----------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
                      ) -> Iterator[tuple[str, Module]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, _join(prefix, name), remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, table: str, prefix: str, recurse: bool, skip=None) -> Iterator[tuple[str, Tensor]]:
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen or (skip is not None and skip(module, name)):
                    continue
                seen.add(id(value))
                yield _join(module_prefix, name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target: str) -> Module:
        module = self
        for part in target.split(".") if target else ():
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' (looking up '{target}')")
            module = child
        return module

    # --- modes and bulk edits -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be a bool")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none and is_tracing():
            note_grads_dropped(list(self.parameters()))
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor._make(np.zeros_like(p.grad.data))

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every submodule (children first) and then on self, like PyTorch."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _cast_floats(self, dtype) -> Module:
        """Change the dtype of floating parameters and buffers in place (the objects stay the same)."""
        with no_grad():
            for t in (*self.parameters(), *self.buffers()):
                if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                    t.data = t.data.astype(dtype)
                    if t.grad is not None:
                        t.grad = Tensor._make(t.grad.data.astype(dtype))
                    mark_modified(t, f"{type(self).__name__}.to({np.dtype(dtype).name})")
        return self

    def double(self) -> Module:
        return self._cast_floats(np.float64)

    def float(self) -> Module:
        return self._cast_floats(np.float32)

    # --- state dict ---------------------------------------------------------------------------
    def _state_tensors(self, prefix: str = "") -> OrderedDict[str, Tensor]:
        """name -> live tensor, in PyTorch's order: own params, own persistent buffers, then children.
        Shared tensors appear under every name, as in PyTorch."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        stack = [(prefix, self)]
        while stack:
            module_prefix, module = stack.pop()
            for name, p in module._parameters.items():
                if p is not None:
                    out[module_prefix + name] = p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    out[module_prefix + name] = b
            children = [(module_prefix + name + ".", m) for name, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))
        return out

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Any]:
        """name -> a copy of each parameter and persistent buffer as a NumPy array (keep_vars: the Tensors)."""
        tensors = self._state_tensors(prefix)
        if keep_vars:
            return tensors
        return OrderedDict((name, t.data.copy()) for name, t in tensors.items())

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy `state_dict` into the module's tensors in place (optimizers keep valid references).

        Everything is checked before anything is copied: on an error the module is unchanged.
        Shape mismatches are errors even when strict=False (as in PyTorch).
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems: list[str] = []
        arrays: dict[str, np.ndarray] = {}
        for name, t in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            if arr.shape != t.data.shape:
                problems.append(
                    f"size mismatch for {name}: checkpoint {fmt_shape(arr.shape)}, model {fmt_shape(t.data.shape)}"
                )
            elif arr.dtype.kind not in "biuf":
                problems.append(f"dtype mismatch for {name}: checkpoint {arr.dtype}, model {t.data.dtype}")
            else:
                arrays[name] = arr
        if strict:
            if missing:
                problems.insert(0, "missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
            if unexpected:
                problems.insert(int(bool(missing)),
                                "unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
        if problems:
            header = f"load_state_dict: error(s) loading state_dict for {type(self).__name__}"
            if len(problems) == 1:
                raise StateDictError(f"load_state_dict: {problems[0]}")
            raise StateDictError(header + ":\n  " + "\n  ".join(problems))
        for name, arr in arrays.items():
            t = own[name]
            np.copyto(t.data, arr, casting="unsafe")
            mark_modified(t, "load_state_dict")
        return IncompatibleKeys(missing, unexpected)

    # --- display ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr; layers override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({key}): " + _addindent(repr(module), 2) for key, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _as_buffer(name: str, value: Any) -> Tensor | None:
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(f"buffer '{name}' must not require grad; register learnable tensors as Parameters")
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return Tensor(value)
    raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' (Tensor, ndarray or None expected)")


# --- containers -------------------------------------------------------------------------------
class Sequential(Module):
    """Calls its modules in order, feeding each one's output to the next."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def _key(self, idx: int) -> str:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx: int | slice) -> Module:
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(self._key(idx), module)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for key in keys:
            self._forget(key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules, registered so their parameters are found; indexing like a Python list."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> int:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for ModuleList of length {n}")
        return idx % n

    def __getitem__(self, idx: int | slice) -> Module | "ModuleList":
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(self._index(idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(str(self._index(idx)), module)

    def __delitem__(self, idx: int | slice) -> None:
        items = list(self._modules.values())
        del items[idx]
        self._renumber(items)

    def _renumber(self, items: list) -> None:
        for key in list(self._modules):
            self._forget(key)
        for i, module in enumerate(items):
            self.add_module(str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Any) -> "ModuleList":
        return self.extend(modules)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Any) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def __repr__(self) -> str:
        # PyTorch folds runs of identical children: "(0-2): 3 x Linear(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        blocks: list[list] = []  # [start, end, repr]
        for i, r in enumerate(reprs):
            if blocks and blocks[-1][2] == r:
                blocks[-1][1] = i
            else:
                blocks.append([i, i, r])
        lines = [
            _addindent(f"({s}): {r}" if s == e else f"({s}-{e}): {e - s + 1} x {r}", 2) for s, e, r in blocks
        ]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules (insertion ordered), registered so their parameters are found."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        self._forget(key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key: str) -> Module:
        module = self._modules[key]
        self._forget(key)
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            self._forget(key)

    def update(self, modules: Any) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module
