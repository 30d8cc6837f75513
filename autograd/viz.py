"""Draw the recorded graph with Graphviz: forward graphs, gradient graphs, module clusters, profiles.

`draw(*outputs)` reads `autograd.introspect.walk` (the graph as data) and returns a
`graphviz.Digraph` subclass: `.source` is DOT text (no Graphviz program needed), `.render()` writes
SVG/PNG/PDF with the `dot` program, and Jupyter displays it inline. torchviz's colour code: ops
light grey, parameters light blue, other inputs light yellow, saved tensors orange, outputs green.
Unlike torchviz, node names come from the walk order (the same program gives byte-identical DOT),
ops are clustered by the module that made them, and whole module calls can be collapsed to one box.
A gradient graph can be drawn beside its forward graph (`layout="side_by_side"`): forward on the
left, backward on the right, each gradient op on the row of the forward op it differentiates.
Inputs unfolded by unrecorded ops (conv's im2col of an image) are drawn as the tensor the user
passed when the forward ran inside `record_inputs()`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import graphviz

from .errors import TapegradError, fmt_shape
from .introspect import LeafInfo, NodeInfo, Record, Scope, output_ids, record_backward, record_inputs, walk
from .tensor import Tensor

__all__ = ["draw", "record_backward", "record_inputs", "GraphvizNotInstalled", "Graph", "COLORS"]
LAYOUTS = ("interleaved", "side_by_side")
_FORWARD, _BACKWARD = ("forward", "side"), ("backward", "side")

COLORS = {
    "op": "lightgrey",
    "param": "lightblue",
    "input": "lightyellow",
    "saved": "orange",
    "output": "darkolivegreen1",
    "module": "lavender",
    "grad_op": "mistyrose",
    "nonfinite": "#ff8080",
}
_HEAT = ((255, 255, 255), (253, 174, 97), (166, 97, 26))  # light yellow -> orange -> brown (red means NaN)
_INSTALL = (
    "the Graphviz 'dot' program was not found on PATH, so the graph cannot be rendered. Install Graphviz: "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, "
    "or see https://graphviz.org/download/. The DOT text is still available as `.source`."
)


class GraphvizNotInstalled(TapegradError, RuntimeError):
    """Rendering needs the `dot` executable of the Graphviz system package."""


class Graph(graphviz.Digraph):
    """A Digraph whose rendering says how to install Graphviz when `dot` is missing."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotInstalled(_INSTALL) from exc

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotInstalled(_INSTALL) from exc

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs: Any) -> dict:
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except GraphvizNotInstalled as exc:  # a notebook shows the reason instead of a traceback
            return {"text/plain": str(exc)}

    def _repr_svg_(self) -> str | None:
        try:
            return self.pipe(format="svg", encoding="utf-8")
        except GraphvizNotInstalled:
            return None


def draw(
    *outputs: Tensor,
    params: Mapping[str, Tensor] | None = None,
    module: Any = None,
    show_shapes: bool = True,
    show_saved: bool = False,
    backward: bool = False,
    collapse: Iterable[str] | None = None,
    depth: int | None = None,
    rankdir: str = "TB",
    overlay: Any = None,
    legend: bool = True,
    layout: str = "interleaved",
    show_source: bool = True,
) -> Graph:
    """Draw the graph that produced `outputs`.

    params / module: name parameter leaves (`dict(model.named_parameters())`, or the model).
    show_shapes: label tensor edges with shape and dtype. show_saved: an orange note per op listing
    what it keeps for backward, with bytes. backward: the outputs are gradients computed with
    `create_graph=True`; ops recorded inside `record_backward()` are drawn pink, grouped per forward op
    and linked to it by a dashed red edge. collapse: module class names (or qualified names) whose calls
    are drawn as one box; depth: draw every module call at nesting level `depth` as one box (the root
    module, qualified name "", is level 0: depth=1 boxes its children, depth=0 the whole model). rankdir: 'TB' or 'LR'. overlay: a `profiler.profile`
    whose timings colour the ops (ms, saved bytes, NaN/Inf in red). layout: with backward=True,
    "interleaved" puts each gradient cluster next to its forward op; "side_by_side" draws the forward
    graph on the left and the backward graph on the right, each gradient op on the row of the forward
    op it differentiates, linked to it. show_source: print the user's line under each op when it was
    captured (anomaly mode, profile).
    """
    if not outputs:
        raise ValueError("draw: give at least one output tensor")
    if len(outputs) == 1 and hasattr(outputs[0], "eqns"):  # a Program (autograd.trace): its own drawing
        from .program import to_dot

        return to_dot(outputs[0], graph_class=Graph, rankdir=rankdir)
    if layout not in LAYOUTS:
        raise ValueError(f"draw: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "side_by_side" and not backward:
        raise ValueError("draw: layout='side_by_side' draws a gradient beside its forward graph: pass backward=True "
                         "and gradients computed with create_graph=True inside viz.record_backward()")
    records = walk(*outputs, params=params, module=module, follow_grad_of=backward)
    opts = _Options(show_shapes, show_saved, backward, set(collapse or ()), depth, overlay,
                    layout == "side_by_side", show_source)
    return _Builder(records, output_ids(records, outputs), outputs, opts).build(rankdir, legend)


@dataclass
class _Options:
    show_shapes: bool
    show_saved: bool
    backward: bool
    collapse: set[str]
    depth: int | None
    overlay: Any
    side_by_side: bool = False
    show_source: bool = True


@dataclass
class _Box:
    """A collapsed module call: all of its ops (and the parameters only they use) as one node."""

    name: str
    scope: Scope
    members: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)


class _Builder:
    """Turns walk records into display nodes, clusters and edges; one instance per draw()."""

    def __init__(self, records: list[Record], outs: list[int], outputs: Sequence[Tensor], opts: _Options):
        self.rec = records
        self.outs = outs
        self.outputs = outputs
        self.o = opts
        self.consumers: dict[int, list[int]] = defaultdict(list)
        for r in records:
            if isinstance(r, NodeInfo):
                for i in dict.fromkeys(x for x in r.inputs if x is not None):
                    self.consumers[i].append(r.id)
        self.scope = {r.id: self._scope(r) for r in records}
        self.boxes: dict[Scope, _Box] = {}
        self.owner: dict[int, str] = {}  # record id -> display node name
        self.origins: dict[Any, str] = {}  # the user's tensor behind unfolded leaves -> its display node
        # unfolded leaf id -> (display node of the user's tensor, node of the unrecorded ops or None)
        self.unfolded: dict[int, tuple[str, str | None]] = {}
        self._assign()

    # --- which display node shows each record -------------------------------------------------
    def _scope(self, r: Record) -> Scope:
        if not self.o.side_by_side:
            return self._own_scope(r)
        if isinstance(r, NodeInfo) and r.grad_of is not None or isinstance(r, LeafInfo) and r.is_grad:
            return (_BACKWARD,) + self._own_scope(r)
        return (_FORWARD,) + self._own_scope(r)

    def _own_scope(self, r: Record) -> Scope:
        if isinstance(r, NodeInfo):
            if r.grad_of is not None:  # a gradient op sits next to its forward op, in a cluster of its own
                fwd = self.rec[r.grad_of]
                return fwd.scope + ((f"∂ {fwd.op} #{fwd.id}", "grad"),)
            return r.scope
        users = [self.rec[c] for c in self.consumers.get(r.id, [])]
        if r.is_param and users:  # a parameter sits in the cluster of the module that owns it
            owner = r.name.rpartition(".")[0]
            for u in users:
                for k, (qual, _) in enumerate(u.scope):
                    if qual == owner and owner:
                        return u.scope[: k + 1]
        return ()

    def _box_key(self, scope: Scope) -> Scope | None:
        level = 0  # the root module (qualified name "") is level 0, its children level 1, ...
        for k, (qual, kind) in enumerate(scope):
            if kind == "side":
                continue
            level += 1 if qual else 0
            if kind in self.o.collapse or (qual and qual in self.o.collapse):
                return scope[: k + 1]
            if self.o.depth is not None and level >= self.o.depth:
                return scope[: k + 1]
        return None

    def _assign(self) -> None:
        for r in self.rec:
            if isinstance(r, NodeInfo):
                key = self._box_key(self.scope[r.id]) if (self.o.collapse or self.o.depth is not None) else None
                if key is not None:
                    box = self.boxes.setdefault(key, _Box(f"m{len(self.boxes)}", key))
                    box.members.append(r.id)
                    self.owner[r.id] = box.name
                    continue
            self.owner[r.id] = f"n{r.id}"
        by_name = {b.name: b for b in self.boxes.values()}
        for r in self.rec:  # parameters used only inside one box disappear into it
            if isinstance(r, LeafInfo) and r.id not in self.outs:
                homes = {self.owner[c] for c in self.consumers.get(r.id, [])}
                if len(homes) == 1 and (home := homes.pop()) in by_name and r.is_param:
                    by_name[home].params.append(r.id)
                    self.owner[r.id] = home

    # --- emit ---------------------------------------------------------------------------------
    def build(self, rankdir: str, legend: bool) -> Graph:
        g = Graph(name="tapegrad", graph_attr={"rankdir": rankdir, "nodesep": "0.25", "ranksep": "0.35",
                                               "fontname": "Helvetica", "fontsize": "11"},
                  node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                             "fontsize": "10", "height": "0.3", "margin": "0.08,0.04"},
                  edge_attr={"fontname": "Helvetica", "fontsize": "9", "fontcolor": "gray25", "arrowsize": "0.6"})
        placed: dict[Scope, list[tuple[str, dict]]] = defaultdict(list)
        for r in self.rec:
            if self.owner[r.id] != f"n{r.id}":
                continue
            attrs = self._leaf_attrs(r) if isinstance(r, LeafInfo) else self._op_attrs(r)
            if isinstance(r, LeafInfo) and r.origin is not None:
                self._place_origin(r, placed)
                continue
            placed[self.scope[r.id]].append((f"n{r.id}", attrs))
            if self.o.show_saved and isinstance(r, NodeInfo) and r.saved:
                placed[self.scope[r.id]].append((f"s{r.id}", self._saved_attrs(r)))
        for box in self.boxes.values():
            placed[box.scope[:-1]].append((box.name, self._box_attrs(box)))
        if self.o.side_by_side:
            g.attr(newrank="true")  # rank constraints across clusters: a gradient op on its forward op's row
        self._emit_clusters(g, placed)
        self._emit_edges(g)
        if self.o.side_by_side:
            self._align_ranks(g)
        for k, (rid, t) in enumerate(zip(self.outs, self.outputs)):
            label = t.name or ("gradient" if self.o.backward else "output") + (f" {k}" if len(self.outs) > 1 else "")
            g.node(f"out{k}", _lines(label, self._tensor_text(self.rec[rid])), fillcolor=COLORS["output"])
            g.edge(self.owner[rid], f"out{k}")
        if legend:
            self._emit_legend(g)
        return g

    def _place_origin(self, r: LeafInfo, placed: dict[Scope, list[tuple[str, dict]]]) -> None:
        """The user's tensor (once per tensor) and the unrecorded ops that made this leaf from it, the
        ops in the module cluster they ran in."""
        o = r.origin
        key = id(o.tensor) if o.tensor is not None else ("shape", o.shape, r.id)
        if key not in self.origins:
            self.origins[key] = f"n{r.id}"
            name = getattr(o.tensor, "name", None) or r.name  # the user's own name for the tensor, if any
            text = [name] if not self.o.show_shapes else [name, f"{fmt_shape(o.shape)} {_short_dtype(o.dtype)}"]
            placed[self._side(r) + ()].append((f"n{r.id}", {"label": _lines(*text), "fillcolor": COLORS["input"],
                                                            "shape": "box", "style": "filled"}))
        boxed = all(self.owner[c] != f"n{c}" for c in self.consumers.get(r.id, []))
        if boxed:  # the unfolding is inside a collapsed module box: the user's tensor goes straight in
            self.unfolded[r.id] = (self.origins[key], None)
            return
        placed[self._side(r) + o.scope].append((f"u{r.id}", {
            "label": _lines(" → ".join(o.ops), "not recorded (input needs no grad)"),
            "style": "rounded,dashed", "color": "gray50", "fontcolor": "gray30", "fontsize": "9"}))
        self.unfolded[r.id] = (self.origins[key], f"u{r.id}")

    def _side(self, r: Record) -> Scope:
        return (_FORWARD,) if self.o.side_by_side else ()

    def _align_ranks(self, g: graphviz.Digraph) -> None:
        """Put each forward op and the gradient ops of its VJP on one row (newrank allows it across clusters)."""
        groups: dict[int, list[str]] = defaultdict(list)
        for r in self.rec:
            if isinstance(r, NodeInfo) and r.grad_of is not None and self.owner[r.id] == f"n{r.id}":
                groups[r.grad_of].append(f"n{r.id}")
        for fwd, names in groups.items():
            if self.owner[fwd] != f"n{fwd}":
                continue
            row = graphviz.Digraph()
            row.attr(rank="same")
            for name in [f"n{fwd}"] + names:
                row.node(name)
            g.subgraph(row)

    def _emit_clusters(self, g: graphviz.Digraph, placed: dict[Scope, list[tuple[str, dict]]]) -> None:
        # clusters numbered in order of first appearance (placed follows the walk): deterministic ids
        scopes = list(dict.fromkeys(s[:k] for s in placed for k in range(len(s) + 1)))
        ids = {s: i for i, s in enumerate(scopes)}
        children: dict[Scope, list[Scope]] = defaultdict(list)
        for s in scopes:
            if s:
                children[s[:-1]].append(s)

        def build(scope: Scope, target: graphviz.Digraph) -> None:  # recursion depth = module nesting
            for name, attrs in placed.get(scope, []):
                target.node(name, **attrs)
            for child in children[scope]:
                qual, kind = child[-1]
                sub = graphviz.Digraph(name=f"cluster_{ids[child]}")
                grad = kind == "grad"
                if kind == "side":
                    sub.attr(label=qual, labeljust="c", style="dashed", color="gray70", fontsize="12",
                             fontcolor="gray30")
                    build(child, sub)
                    target.subgraph(sub)
                    continue
                sub.attr(label=qual if grad else (f"{qual} {kind}" if qual else kind), labeljust="l",
                         style="rounded,filled" + (",dashed" if grad else ""), color="salmon" if grad else "gray60",
                         fillcolor="#fff7f5" if grad else ("#f4f4f8" if len(child) % 2 else "#ffffff"),
                         fontsize="10", fontcolor="gray20")
                build(child, sub)
                target.subgraph(sub)

        build((), g)

    def _emit_edges(self, g: graphviz.Digraph) -> None:
        drawn: set[tuple[str, str]] = set()
        for r in self.rec:
            if not isinstance(r, NodeInfo):
                continue
            dst = self.owner[r.id]
            for ref in r.inputs:
                if ref is None:
                    continue
                src = self.owner[ref]
                if ref in self.unfolded:  # user's tensor -> unrecorded ops -> this op
                    user, via = self.unfolded[ref]
                    if via is None:
                        src = user
                    elif (user, via) not in drawn:
                        drawn.add((user, via))
                        g.edge(user, via, style="dashed", color="gray50")
                    src = via or user
                if src == dst or (src, dst) in drawn:
                    continue
                drawn.add((src, dst))
                label = self._tensor_text(self.rec[ref]) if self.o.show_shapes else None
                backward_edge = self.o.side_by_side and r.grad_of is not None
                g.edge(src, dst, label=label, **({"constraint": "false"} if backward_edge else {}))
            if self.o.show_saved and r.saved and dst == f"n{r.id}":
                g.edge(f"s{r.id}", dst, style="dotted", arrowhead="none", color="darkorange")
            if r.grad_of is not None and dst == f"n{r.id}":
                first = min(c for c in self._grad_group(r.grad_of))
                if first == r.id:
                    g.edge(self.owner[r.grad_of], dst, style="dashed", color="firebrick", constraint="false",
                           arrowhead="vee", tooltip="gradient of")

    def _grad_group(self, fwd: int) -> list[int]:
        return [x.id for x in self.rec if isinstance(x, NodeInfo) and x.grad_of == fwd]

    def _emit_legend(self, g: graphviz.Digraph) -> None:
        items = [("op", COLORS["op"]), ("parameter", COLORS["param"]), ("input", COLORS["input"]),
                 ("output", COLORS["output"])]
        if self.o.show_saved:
            items.append(("saved for backward", COLORS["saved"]))
        if self.boxes:
            items.append(("module call (collapsed)", COLORS["module"]))
        if self.o.backward:
            items.append(("gradient op", COLORS["grad_op"]))
            if not any(isinstance(r, NodeInfo) and r.grad_of is not None for r in self.rec):
                items.append(("unlinked: wrap backward in viz.record_backward()", "white"))
        if self.o.overlay is not None:
            items += [("fast op", _heat(0.0)), ("slow op", _heat(1.0)), ("NaN/Inf", COLORS["nonfinite"])]
        rows = "".join(
            f'<TR><TD BGCOLOR="{colour}" WIDTH="18"></TD><TD ALIGN="LEFT">{graphviz.escape(text)}</TD></TR>'
            for text, colour in items
        )
        g.node("legend", f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="3">{rows}</TABLE>>',
               shape="plaintext", style="", fontsize="8")

    # --- labels ---------------------------------------------------------------------------------
    def _tensor_text(self, r: Record) -> str:
        return f"{fmt_shape(r.shape)} {_short_dtype(r.dtype)}"

    def _ref_name(self, ref: int, what: str) -> str:
        r = self.rec[ref]
        return r.name if isinstance(r, LeafInfo) else ("out" if what == "out" else f"{r.op} #{r.id}")

    def _leaf_attrs(self, r: LeafInfo) -> dict:
        if r.is_grad:
            colour = COLORS["grad_op"]
        else:
            colour = COLORS["param"] if r.is_param else COLORS["input"]
        text = [r.name]
        if not self.o.show_shapes or not self.consumers.get(r.id):
            text.append(self._tensor_text(r))
        return {"label": _lines(*text), "fillcolor": colour, "shape": "box", "style": "filled"}

    def _op_attrs(self, r: NodeInfo) -> dict:
        shown = [f"{k}={v}" for k, v in r.params if v not in ("None", "False")]
        text = [r.op] + ([", ".join(shown)] if shown else [])
        attrs = {"fillcolor": COLORS["grad_op"] if r.grad_of is not None else COLORS["op"]}
        text += self._overlay(attrs, [r.node], r.saved_bytes)
        if self.o.show_source and r.source and r.grad_of is None:  # gradient ops all come from the grad() line
            text.append(_short_source(r.source))
            attrs["fontsize"] = "9"
        attrs["label"] = _lines(*text)
        tip = r.source or (" / ".join(f"{q or k}" for q, k in r.scope) or r.op)
        attrs["tooltip"] = graphviz.escape(tip)
        return attrs

    def _saved_attrs(self, r: NodeInfo) -> dict:
        rows = [f"{self._ref_name(s.ref, s.what)}: {fmt_shape(s.shape)} {_short_dtype(s.dtype)}  {_bytes(s.nbytes)}"
                for s in r.saved]
        if len(rows) > 1:
            rows.append(f"total {_bytes(r.saved_bytes)}")
        return {"label": _lines("saved", *rows), "fillcolor": COLORS["saved"], "shape": "note",
                "style": "filled", "fontsize": "8"}

    def _box_attrs(self, box: _Box) -> dict:
        qual, kind = box.scope[-1]
        members = set(box.members) | set(box.params)
        ins = [ref for m in box.members for ref in self.rec[m].inputs if ref is not None and ref not in members]
        outs = [m for m in box.members
                if m in self.outs or any(c not in members for c in self.consumers.get(m, []))]
        shapes = lambda ids: ", ".join(fmt_shape(self.rec[i].shape) for i in dict.fromkeys(ids)) or "-"  # noqa: E731
        prefix = qual + "." if qual else ""
        weights = [f"{self.rec[p].name.removeprefix(prefix)} {fmt_shape(self.rec[p].shape)}" for p in box.params]
        text = [f"{qual} {kind}" if qual else kind, f"{shapes(ins)} → {shapes(outs)}"]
        if weights:
            text.append(", ".join(weights))
        text.append(f"{len(box.members)} op" + ("s" if len(box.members) > 1 else ""))
        attrs = {"fillcolor": COLORS["module"], "shape": "box", "style": "filled,bold", "color": "slateblue"}
        saved = sum(self.rec[m].saved_bytes for m in box.members)
        text += self._overlay(attrs, [self.rec[m].node for m in box.members], saved)
        attrs["label"] = _lines(*text)
        return attrs

    def _slowest(self) -> float:
        """Largest forward + backward seconds of one drawn node (an op, or a module box): the colour scale."""
        if not hasattr(self, "_top"):
            units: dict[str, float] = defaultdict(float)
            for r in self.rec:
                if isinstance(r, NodeInfo) and (st := self.o.overlay.stats(r.node)) is not None:
                    units[self.owner[r.id]] += (st.fwd_s or 0.0) + st.bwd_s
            self._top = max(units.values(), default=0.0)
        return self._top

    def _overlay(self, attrs: dict, nodes: list, saved: int) -> list[str]:
        prof = self.o.overlay
        if prof is None:
            return [f"saved {_bytes(saved)}"] if self.o.show_saved and self.boxes and saved else []
        stats = [s for s in (prof.stats(n) for n in nodes) if s is not None]
        if not stats:
            return []
        fwd = sum(s.fwd_s for s in stats if s.fwd_s is not None)
        bwd = sum(s.bwd_s for s in stats)
        top = max(self._slowest(), 1e-12)
        heat = min((fwd + bwd) / top, 1.0)
        attrs["fillcolor"] = _heat(heat)
        if heat > 0.65:
            attrs["fontcolor"] = "white"
        text = [f"fwd {fwd * 1e3:.2f} ms | bwd {bwd * 1e3:.2f} ms", f"saved {_bytes(saved)}"]
        bad = [w for w, flag in (("output", any(s.nonfinite_out for s in stats)),
                                 ("gradient", any(s.nonfinite_grad for s in stats))) if flag]
        if bad:  # the op where NaN/Inf first appears is filled red; ops that only pass it on get a red border
            attrs.update(color="red", penwidth="3")
            if any(n in self._nan_origins() for n in nodes):
                attrs.update(fillcolor=COLORS["nonfinite"], fontcolor="darkred")
                text.append("NaN/Inf starts here (" + " and ".join(bad) + ")")
            else:
                text.append("NaN/Inf in " + " and ".join(bad))
        return text

    def _nan_origins(self) -> set:
        """Nodes with a non-finite output whose recorded inputs were all finite (or a non-finite gradient
        computed from a finite incoming gradient): where a NaN/Inf was born, not where it flowed."""
        if not hasattr(self, "_origins"):
            prof, self._origins = self.o.overlay, set()
            by_id = {r.id: prof.stats(r.node) for r in self.rec if isinstance(r, NodeInfo)}
            consumers = self.consumers
            for r in self.rec:
                st = by_id.get(r.id)
                if st is None or not isinstance(r, NodeInfo):
                    continue
                ins = [by_id.get(i) for i in r.inputs if i is not None]
                outs = [by_id.get(c) for c in consumers.get(r.id, [])]
                if st.nonfinite_out and not any(s is not None and s.nonfinite_out for s in ins):
                    self._origins.add(r.node)
                elif st.nonfinite_grad and not st.nonfinite_out and not any(
                        s is not None and s.nonfinite_grad for s in outs):
                    self._origins.add(r.node)
        return self._origins


def _heat(f: float) -> str:
    lo, mid, hi = _HEAT
    a, b, t = (lo, mid, f * 2) if f < 0.5 else (mid, hi, f * 2 - 1)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def _short_dtype(dtype: str) -> str:
    """float32 -> f32, int64 -> i64: edge labels stay short; bool and others unchanged."""
    for long, short in (("float", "f"), ("uint", "u"), ("int", "i"), ("complex", "c")):
        if dtype.startswith(long) and dtype[len(long):].isdigit():
            return short + dtype[len(long):]
    return dtype


def _short_source(source: str, limit: int = 48) -> str:
    """'/long/path/train.py:20 in step: y = f(x)' -> 'train.py:20: y = f(x)', cut to `limit` characters."""
    where, _, code = source.partition(" in ")
    path, _, line = where.rpartition(":")
    text = f"{path.rsplit('/', 1)[-1]}:{line}: {code.partition(': ')[2]}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _lines(*parts: str) -> str:
    return "\\n".join(p.replace("\\", "\\\\") for p in parts)
