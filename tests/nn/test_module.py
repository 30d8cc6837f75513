"""Module machinery: registration, dotted names, state dicts, modes, containers, reprs, scopes.

Uses only Parameters, buffers and containers (no layers), so these tests need no nn.functional.
Where PyTorch is installed, the same architecture built in torch gives the same names and reprs.
"""
from collections import OrderedDict

import numpy as np
import pytest

import autograd as ag
import nn
from nn import Module, ModuleDict, ModuleList, Parameter, Sequential


# --- a small architecture, built the same way in tapegrad and (below) in torch ---------------------
def make_classes(base, param, containers):
    """Define Affine/Stat/Block/Net on top of `base` (nn.Module of either framework)."""
    Seq, MList, MDict = containers

    class Affine(base):
        def __init__(self, n, m):
            super().__init__()
            self.weight = param(np.ones((m, n), dtype=np.float32))
            self.bias = param(np.zeros(m, dtype=np.float32))

        def forward(self, x):
            return x @ self.weight.T + self.bias

        def extra_repr(self):
            return f"n={self.weight.shape[1]}, m={self.weight.shape[0]}"

    class Stat(base):
        def __init__(self, n):
            super().__init__()
            self.scale = param(np.ones(n, dtype=np.float32))
            self.register_buffer("running_mean", np.zeros(n, dtype=np.float32))
            self.register_buffer("scratch", np.zeros(n, dtype=np.float32), persistent=False)

        def forward(self, x):
            return x * self.scale

    class Block(base):
        def __init__(self):
            super().__init__()
            self.fc = Affine(3, 3)
            self.stat = Stat(3)

        def forward(self, x):
            return self.stat(self.fc(x))

    class Net(base):
        def __init__(self):
            super().__init__()
            self.stem = Seq(Affine(4, 3), Stat(3))
            self.blocks = MList([Block(), Block()])
            self.heads = MDict({"a": Affine(3, 2), "b": Affine(3, 1)})

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](x)

    return Affine, Stat, Block, Net


Affine, Stat, Block, Net = make_classes(Module, Parameter, (Sequential, ModuleList, ModuleDict))


@pytest.fixture(scope="module")
def torch_classes():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for names and reprs")

    def param(a):
        return torch.nn.Parameter(torch.tensor(a))

    class TorchBase(torch.nn.Module):
        def register_buffer(self, name, value, persistent=True):
            super().register_buffer(name, torch.tensor(value), persistent=persistent)

    tn = torch.nn
    return make_classes(TorchBase, param, (tn.Sequential, tn.ModuleList, tn.ModuleDict))


# --- Parameter -------------------------------------------------------------------------------------
def test_parameter_defaults():
    p = Parameter([1.0, 2.0])
    assert isinstance(p, ag.Tensor)
    assert p.requires_grad and p.is_leaf
    assert p.dtype == np.float32
    assert Parameter(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert not Parameter([1.0], requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")


def test_parameter_gets_gradient():
    p = Parameter([1.0, 2.0])
    (p * p).sum().backward()
    np.testing.assert_allclose(p.grad.data, [2.0, 4.0])


# --- registration and names ------------------------------------------------------------------------
def test_named_parameters_dotted_and_deduplicated():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names[:3] == ["stem.0.weight", "stem.0.bias", "stem.1.scale"]
    assert "blocks.1.stat.scale" in names and "heads.b.bias" in names
    assert len(names) == len(set(names)) == 13
    net.heads["b"].weight = net.heads["a"].weight  # shared parameter: listed once
    assert len(list(net.parameters())) == 12
    assert [n for n, _ in net.stem[1].named_parameters(prefix="x")] == ["x.scale"]
    assert list(net.named_parameters(recurse=False)) == []


def test_named_buffers_include_non_persistent_but_state_dict_does_not():
    s = Stat(3)
    assert [n for n, _ in s.named_buffers()] == ["running_mean", "scratch"]
    assert list(s.state_dict()) == ["scale", "running_mean"]
    assert not any(b.requires_grad for b in s.buffers())


def test_state_dict_keys_match_torch(torch_classes):
    TNet = torch_classes[3]
    ours, theirs = Net(), TNet()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]


def test_repr_matches_torch(torch_classes):
    TNet = torch_classes[3]
    assert repr(Net()) == repr(TNet())


def test_modulelist_repr_folds_repeats_like_torch(torch_classes):
    torch = pytest.importorskip("torch")
    TAffine = torch_classes[0]
    ours = ModuleList([Affine(2, 2), Affine(2, 2), Affine(2, 3), Affine(2, 2)])
    theirs = torch.nn.ModuleList([TAffine(2, 2), TAffine(2, 2), TAffine(2, 3), TAffine(2, 2)])
    assert repr(ours) == repr(theirs)
    assert "(0-1): 2 x Affine" in repr(ours)
    assert repr(ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_assignment_rules():
    m = Affine(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = ag.tensor(np.zeros((2, 2)))  # a plain tensor cannot replace a parameter
    m.bias = None
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.extra = 3  # plain attributes stay plain
    assert m.extra == 3 and "extra" not in m.state_dict()
    del m.weight
    assert list(m.state_dict()) == [] and not hasattr(m, "weight")
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope


def test_register_buffer_validation():
    m = Module()
    with pytest.raises(KeyError):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(TypeError, match="must not require grad"):
        m.register_buffer("x", ag.tensor([1.0], requires_grad=True))
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("forward", np.zeros(1))
    m.register_buffer("x", np.zeros(2))
    m.x = np.ones(2)  # assigning to a buffer name replaces the buffer
    assert isinstance(m.x, ag.Tensor) and m.state_dict()["x"].tolist() == [1.0, 1.0]


def test_state_dict_returns_copies():
    m = Affine(2, 2)
    sd = m.state_dict()
    sd["weight"][...] = 7
    assert np.all(m.weight.data == 1)
    live = m.state_dict(keep_vars=True)
    assert live["weight"] is m.weight


# --- load_state_dict -------------------------------------------------------------------------------
def test_load_state_dict_copies_in_place_and_bumps_version():
    src, dst = Net(), Net()
    rng = np.random.default_rng(0)
    sd = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in src.state_dict().items()}
    w = dst.stem[0].weight
    data_before, version_before = w.data, w._version
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.stem[0].weight is w and w.data is data_before  # optimizers' references stay valid
    assert w._version > version_before
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_load_state_dict_missing_and_unexpected_keys():
    m = Net()
    sd = m.state_dict()
    del sd["heads.b.bias"]
    sd["heads.c.weight"] = np.zeros((1, 3), np.float32)
    with pytest.raises(nn.StateDictError) as err:
        m.load_state_dict(sd)
    message = str(err.value)
    assert 'missing key(s) in state_dict: "heads.b.bias"' in message
    assert 'unexpected key(s) in state_dict: "heads.c.weight"' in message
    result = m.load_state_dict(sd, strict=False)
    assert result == (["heads.b.bias"], ["heads.c.weight"])
    assert result.missing_keys == ["heads.b.bias"]


def test_load_state_dict_size_mismatch_message():
    class Fc(Module):
        def __init__(self, n):
            super().__init__()
            self.fc = Affine(n, 10)

    with pytest.raises(nn.StateDictError) as err:
        Fc(64).load_state_dict(Fc(128).state_dict())
    assert str(err.value) == "load_state_dict: size mismatch for fc.weight: checkpoint (10, 128), model (10, 64)"
    with pytest.raises(nn.StateDictError, match="size mismatch"):  # even when not strict, like PyTorch
        Fc(64).load_state_dict(Fc(128).state_dict(), strict=False)


def test_load_state_dict_never_partially_loads():
    m = Net()
    before = m.state_dict()
    sd = {k: np.full(v.shape, 5, v.dtype) for k, v in before.items()}
    sd["heads.b.weight"] = np.zeros((7, 3), np.float32)  # the last entry is wrong
    with pytest.raises(nn.StateDictError):
        m.load_state_dict(sd)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_accepts_tensors_and_casts_dtype():
    m = Affine(2, 2)
    m.load_state_dict({"weight": ag.tensor(np.full((2, 2), 3.0)), "bias": np.arange(2)})
    assert m.weight.dtype == np.float32 and np.all(m.weight.data == 3) and m.bias.data.tolist() == [0, 1]


# --- modes, bulk edits -----------------------------------------------------------------------------
def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("yes")


def test_zero_grad_and_requires_grad_():
    m = Affine(2, 2)
    m(ag.ones(1, 2)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(m.weight.grad.data == 0)
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    net = Sequential(Affine(2, 2), Sequential(Stat(2)))
    seen = []
    net.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Affine", "Stat", "Sequential", "Sequential"]


def test_double_and_float_keep_objects():
    m = Stat(3)
    scale = m.scale
    m.double()
    assert m.scale is scale and scale.dtype == np.float64 and m.running_mean.dtype == np.float64
    m.float()
    assert scale.dtype == np.float32


# --- containers ------------------------------------------------------------------------------------
def test_sequential_indexing_and_forward():
    a, b, c = Affine(2, 3), Stat(3), Affine(3, 1)
    seq = Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    seq.append(c)
    assert seq[2] is c and list(seq.state_dict())[-1] == "2.bias"
    assert list(seq[1:]) == [b, c] and isinstance(seq[1:], Sequential)
    x = ag.ones(4, 2)
    np.testing.assert_allclose(seq(x).data, c(b(a(x))).data)
    with pytest.raises(IndexError):
        seq[3]
    named = Sequential(OrderedDict([("conv", a), ("act", b)]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias", "act.scale", "act.running_mean"]


def test_modulelist_and_moduledict():
    items = ModuleList([Stat(1), Stat(2)])
    items.insert(0, Stat(3))
    assert [m.scale.shape[0] for m in items] == [3, 1, 2]
    del items[1]
    assert [n for n, _ in items.named_children()] == ["0", "1"]
    assert not hasattr(items, "2")  # no stale attribute left behind by renumbering
    items += [Stat(4)]
    assert len(items) == 3 and items[-1].scale.shape == (4,)
    heads = ModuleDict({"x": Stat(1)})
    heads["y"] = Stat(2)
    assert list(heads) == ["x", "y"] and "y" in heads and len(heads) == 2
    assert list(heads.state_dict()) == ["x.scale", "x.running_mean", "y.scale", "y.running_mean"]
    heads.pop("x")
    assert list(heads.keys()) == ["y"] and not hasattr(heads, "x")
    with pytest.raises(KeyError, match="already exists"):
        heads["values"] = Stat(1)  # would shadow a method, as PyTorch refuses too


# --- scopes and hooks ------------------------------------------------------------------------------
def test_scope_names_follow_attachment():
    block = Block()  # built before being attached: names are fixed up when it is
    assert block.fc._scope_name == "fc"
    outer = Sequential(Module(), block)
    assert block._scope_name == "1" and block.stat._scope_name == "1.stat"
    net = Net()
    assert {name: m._scope_name for name, m in net.named_modules()} == {n: n for n, _ in net.named_modules()}


def test_ops_recorded_with_module_scope():
    net = Net()
    out = net(ag.ones(2, 4))
    assert out.grad_fn.scope == (("", "Net"), ("heads.a", "Affine"))
    stat_node = net.blocks[1].stat(ag.tensor(np.ones(3, np.float32), requires_grad=True)).grad_fn
    assert stat_node.scope[-1] == ("blocks.1.stat", "Stat")
    from autograd.graph import _Mode
    assert _Mode.scope == ()  # restored after the call


def test_forward_hooks():
    m = Stat(2)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    post = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    np.testing.assert_allclose(m(ag.ones(2)).data, [3.0, 3.0])
    assert calls == [(2,)]
    pre.remove()
    post.remove()
    np.testing.assert_allclose(m(ag.ones(2)).data, [1.0, 1.0])


def test_no_grad_calls_record_nothing():
    net = Net()
    with ag.no_grad():
        out = net(ag.ones(2, 4))
    assert out.grad_fn is None and out.shape == (2, 2)


def test_attribute_reads_see_replacements():
    m = Block()
    new = Affine(3, 3)
    m.fc = new
    assert m.fc is new and m._modules["fc"] is new and new._scope_name == "fc"
    m.stat.running_mean = np.ones(3, dtype=np.float32)
    assert m.stat.running_mean is m.stat._buffers["running_mean"]
    m.stat.scratch = np.ones(3)  # reassigning a non-persistent buffer keeps it non-persistent
    assert "stat.scratch" not in m.state_dict()


def test_utils_reexports_optim_clipping():
    pytest.importorskip("optim.clip", reason="optim.clip provides the clipping functions")
    from nn.utils import clip_grad_norm_, clip_grad_value_
    import optim.clip

    assert clip_grad_norm_ is optim.clip.clip_grad_norm_ and clip_grad_value_ is optim.clip.clip_grad_value_
    with pytest.raises(AttributeError):
        nn.utils.not_there


def test_forward_not_implemented():
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(1)
