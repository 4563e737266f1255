"""The CPU lowerings equal MindSpore's native kernels: the batched-matmul
convolution (unfolded columns, or the strided map for 1x1), forward and backward (input and weight
gradients), on the shapes the ResNets use (the 7x7/2 stem, 3x3/1 and 3x3/2
convs, 1x1 projections); the max pool against torch's, repeatably."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mindspore")
from vdreid.spec import Pool  # noqa: E402
from vdreid_mindspore._quiet import mindspore as ms  # noqa: E402
from vdreid_mindspore.lowering import Conv2d, MaxPool  # noqa: E402

SHAPES = [  # (N, C, H, W, O, kernel, stride, padding)
    (2, 3, 17, 11, 5, 7, 2, 3),
    (3, 8, 9, 8, 6, 3, 1, 1),
    (2, 4, 8, 7, 4, 3, 2, 1),
    (2, 4, 8, 8, 6, 1, 2, 0),
]


def _pair(shape, bias: bool):
    n, c, h, w, o, k, s, p = shape
    rng = np.random.default_rng(k * 10 + s)
    weight = ms.Tensor(rng.normal(0.0, 0.2, (o, c, k, k)).astype(np.float32))
    convs = []
    for lowered in (True, False):
        conv = Conv2d(c, o, k, s, p, bias=bias, lowered=lowered)
        conv.weight.copy_(weight)
        if bias:
            conv.bias.copy_(ms.Tensor(np.arange(o, dtype=np.float32)))
        convs.append(conv)
    x = ms.Tensor(rng.normal(size=(n, c, h, w)).astype(np.float32))
    return convs, x


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"k{s[5]}s{s[6]}")
def test_lowered_conv_equals_native_forward_and_backward(shape):
    (fast, native), x = _pair(shape, bias=True)
    assert fast.lowered and not native.lowered
    y_fast, y_native = fast(x).asnumpy(), native(x).asnumpy()
    assert y_fast.shape == y_native.shape
    np.testing.assert_allclose(y_fast, y_native, rtol=0, atol=1e-5)

    def grads(conv):
        gx, gw = ms.grad(conv, grad_position=0, weights=conv.trainable_params())(x)
        return [gx.asnumpy(), *(g.asnumpy() for g in gw)]

    for got, want in zip(grads(fast), grads(native), strict=True):
        scale = max(1.0, float(np.abs(want).max()))  # weight gradients sum over the batch
        np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-5)
    assert np.abs(grads(fast)[1]).max() > 0  # the weight gradient is not trivially zero


def test_lowered_conv_inside_a_compiled_graph():
    (fast, native), x = _pair(SHAPES[1], bias=False)
    compiled = ms.jit(fast.construct)
    np.testing.assert_allclose(compiled(x).asnumpy(), native(x).asnumpy(), rtol=0, atol=1e-5)


def test_cpu_max_pool_equals_torch_forward_and_backward_every_time():
    torch = pytest.importorskip("torch")
    node = Pool(kind="max", kernel=3, stride=2, padding=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 11, 8)).astype(np.float32)  # odd sizes, negative values
    dy = rng.normal(size=(2, 3, 6, 4)).astype(np.float32)
    ref_x = torch.from_numpy(x).requires_grad_(True)
    ref = torch.nn.functional.max_pool2d(ref_x, 3, 2, 1)
    ref.backward(torch.from_numpy(dy))
    lowered, native = MaxPool(node, lowered=True), MaxPool(node, lowered=False)

    def loss(t):
        return (lowered(t) * ms.Tensor(dy)).sum()

    grad = ms.jit(ms.grad(loss))
    np.testing.assert_array_equal(lowered(ms.Tensor(x)).asnumpy(), ref.detach().numpy())
    np.testing.assert_array_equal(native(ms.Tensor(x)).asnumpy(), ref.detach().numpy())
    for _ in range(3):  # repeatable (ops.pad's backward is not, see lowering.py)
        np.testing.assert_allclose(grad(ms.Tensor(x)).asnumpy(), ref_x.grad.numpy(), atol=1e-6)
