"""The engine's native CPU kernels (``_native.c``), loaded with ctypes, and when they apply.

``pip install`` builds ``_native.c`` into small shared libraries next to this file when a C
compiler is present (``setup.py``: baseline, AVX2 and AVX-512 builds, of which the loader takes
the best the CPU runs; the build is optional). Without them, or with the environment variable
``FACECASCADE_NATIVE=0``, every caller runs its PyTorch version instead; the two agree bit for
bit on the resampling kernels and to float32 rounding on the fused layers
(``tests/test_native.py``). The kernels only take CPU tensors in the layouts they document;
`enabled` and the ``*_ok`` checks say when a tensor qualifies.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

_ABI_VERSION = 1
_ENV = "FACECASCADE_NATIVE"
_I64 = ctypes.c_int64
_P = ctypes.c_void_p
_F64 = ctypes.c_double
_SIGNATURES = {
    "sat": [_P, _I64, _I64, _I64, _P],
    "resize_area": [_P, _I64, _I64, _I64, _P, _I64, _I64, _I64, _I64, _I64, _F64, _F64, _P],
    "crop_resize": [_P, _P, _P, _P, _P, _I64, _I64, _I64, _P, _F64, _F64],
}
_TABLE_SUFFIX = {torch.int32: "i32", torch.int64: "i64"}


def _variants() -> list[str]:
    """Library name suffixes to try, best first, for this CPU (PyTorch's own ISA detection)."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return ["_avx512", "_avx2", ""]
    if capability.startswith("AVX2"):
        return ["_avx2", ""]
    return [""]


def library_path() -> Path | None:
    """The best built library beside this module for this CPU, if any."""
    here = Path(__file__).resolve().parent
    for variant in _variants():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = here / f"_native{variant}{suffix}"
            if candidate.is_file():
                return candidate
    return None


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    path = library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
        if lib.fc_abi_version() != _ABI_VERSION:
            return None
    except OSError:
        return None
    for kind, args in _SIGNATURES.items():
        for suffix in _TABLE_SUFFIX.values():
            fn = getattr(lib, f"fc_{kind}_{suffix}")
            fn.argtypes, fn.restype = args, None
    lib.fc_prelu_maxpool.argtypes = [_P, _I64, _I64, _I64, _I64, _P, _I64, _I64, _P, _P]
    lib.fc_prelu_maxpool.restype = None
    lib.fc_pnet_stem.argtypes = [_P, _I64, _I64, _I64, _I64, _P, _P, _P, _P, _I64, _P, _I64, _P, _P]
    lib.fc_pnet_stem.restype = None
    lib.fc_window_stem.argtypes = [_P, _I64, _I64, _P, _P, _P, _I64, _I64, _I64, _P, _P]
    lib.fc_window_stem.restype = None
    return lib


def _loaded() -> ctypes.CDLL:
    """The library, for a kernel whose ``*_ok`` check passed (so it is loaded)."""
    lib = _library()
    assert lib is not None, "native kernel called without the library: check enabled() first"
    return lib


def enabled() -> bool:
    """Whether the native kernels are built, loadable and not switched off (``FACECASCADE_NATIVE=0``)."""
    return os.environ.get(_ENV, "1") != "0" and _library() is not None


def _cpu_contiguous(*tensors: Tensor) -> bool:
    return all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def summed_area_table_ok(image: Tensor, out: Tensor) -> bool:
    return enabled() and image.dtype == torch.uint8 and out.dtype in _TABLE_SUFFIX and _cpu_contiguous(image, out)


def summed_area_table(image: Tensor, out: Tensor) -> Tensor:
    """Write the ``(H + 1, W + 1, C)`` table of ``image (H, W, C)`` uint8 into ``out``."""
    h, w, c = image.shape
    getattr(_library(), f"fc_sat_{_TABLE_SUFFIX[out.dtype]}")(_ptr(image), h, w, c, _ptr(out))
    return out


def resize_area_ok(table: Tensor, out: Tensor) -> bool:
    """``out (h, w, C)`` float32 on CPU, any strides (a view into a canvas of either layout)."""
    return (
        enabled()
        and table.dtype in _TABLE_SUFFIX
        and out.dtype == torch.float32
        and _cpu_contiguous(table)
        and out.device.type == "cpu"
    )


def resize_area_into(table: Tensor, out: Tensor, scale: float, shift: float) -> Tensor:
    """``scale * area_resize(image) + shift`` into ``out (h, w, C)`` from the image's table."""
    hp, wp, c = table.shape
    oh, ow = out.shape[:2]
    scratch = torch.empty(3 * ow, dtype=torch.int64)
    fn = getattr(_library(), f"fc_resize_area_{_TABLE_SUFFIX[table.dtype]}")
    fn(_ptr(table), hp, wp, c, _ptr(out), oh, ow, *out.stride(), float(scale), float(shift), _ptr(scratch))
    return out


def crop_resize_ok(flat: Tensor) -> bool:
    return enabled() and flat.dtype in _TABLE_SUFFIX and _cpu_contiguous(flat)


def crop_resize(
    flat: Tensor, base: Tensor, row_len: Tensor, owner: Tensor, windows: Tensor, size: int, scale: float, shift: float
) -> Tensor:
    """``(B, size, size, C)`` float32 crops of integer ``windows (B, 4)`` (x0, y0, x1, y1, end
    exclusive) of images ``owner (B,)``, whose tables start at element ``base[i]`` of ``flat``
    with ``row_len[i]`` elements per row."""
    c = flat.shape[-1]
    args = [t.to(torch.int64).contiguous() for t in (base, row_len, owner, windows)]
    out = torch.empty((len(windows), size, size, c))
    fn = getattr(_library(), f"fc_crop_resize_{_TABLE_SUFFIX[flat.dtype]}")
    fn(_ptr(flat), *(_ptr(a) for a in args), len(windows), size, c, _ptr(out), float(scale), float(shift))
    return out


def prelu_max_pool_ok(x: Tensor) -> bool:
    """A float32 NCHW tensor stored channels-last, on CPU, outside autograd."""
    return (
        enabled()
        and x.dim() == 4
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and not x.requires_grad
        and x.is_contiguous(memory_format=torch.channels_last)
    )


def prelu_max_pool(x: Tensor, slope: Tensor, kernel: int, stride: int) -> Tensor:
    """``max_pool2d(prelu(x, slope), kernel, stride, ceil_mode=True)`` in one pass; NaN inputs are
    left out of each maximum. ``x`` ``(N, C, H, W)`` channels-last; result channels-last."""
    if kernel > 16:
        raise ValueError(f"prelu_max_pool supports kernels up to 16, got {kernel}")
    n, c, h, w = x.shape
    oh, ow = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    out = torch.empty((n, oh, ow, c))
    slope = slope.detach().to(torch.float32).expand(c).contiguous()
    scratch = torch.empty(2 * w * c)
    _loaded().fc_prelu_maxpool(_ptr(x), n, h, w, c, _ptr(slope), kernel, stride, _ptr(out), _ptr(scratch))
    return out.permute(0, 3, 1, 2)


STEM_PAD = 16  # columns past the canvas width that `pnet_stem` may read (padding, any values)


def pnet_stem_ok(conv: torch.nn.Module) -> bool:
    """Whether P-Net's first layer ``conv`` is one `pnet_stem` computes: float32 3 -> 10, 3x3, CPU."""
    return (
        enabled()
        and isinstance(conv, torch.nn.Conv2d)
        and tuple(conv.weight.shape) == (10, 3, 3, 3)
        and conv.weight.dtype == torch.float32
        and conv.weight.device.type == "cpu"
        and conv.bias is not None
    )


def pnet_stem(
    planes: Tensor,
    width: int,
    row0: int,
    row1: int,
    conv: torch.nn.Conv2d,
    slope: Tensor,
    row_skip: Tensor,
    col_skip: Tensor,
) -> Tensor:
    """P-Net's conv1, PReLU and 2x2/2 ceil-mode max pooling on canvas rows ``[row0, row1)``.

    Args:
        planes: the planar canvas ``(3, H, width + STEM_PAD)`` float32, contiguous.
        width: canvas columns in use.
        conv, slope: conv1 (10 x 3 x 3 x 3, with bias) and its PReLU slopes.
        row_skip, col_skip: ``(n, 3)`` int64 conv1 positions left out of the pooling, as rows
            ``(row, x0, x1)`` and columns ``(col, y0, y1)`` counted from ``row0`` (end exclusive).

    Returns:
        ``(1, 10, ceil((row1 - row0 - 2) / 2), ceil((width - 2) / 2))`` channels-last.
    """
    _, height, stride = planes.shape
    if stride < width + STEM_PAD or not planes.is_contiguous():
        raise ValueError(f"pnet_stem needs a contiguous canvas with {STEM_PAD} padding columns")
    h = row1 - row0
    ph, pw = (h - 1) // 2, (width - 1) // 2
    wpad = (width - 2 + 16) // 16 * 16
    out = torch.empty((ph, pw, 10))
    scratch = torch.empty(3 * 10 * wpad)
    assert conv.bias is not None  # `pnet_stem_ok`
    weight, bias = conv.weight.detach().contiguous(), conv.bias.detach().contiguous()
    slope = slope.detach().to(torch.float32).expand(10).contiguous()
    row_skip, col_skip = row_skip.contiguous(), col_skip.contiguous()
    _loaded().fc_pnet_stem(
        _ptr(planes[:, row0]),
        h,
        width,
        height * stride,
        stride,
        _ptr(weight),
        _ptr(bias),
        _ptr(slope),
        _ptr(row_skip),
        len(row_skip),
        _ptr(col_skip),
        len(col_skip),
        _ptr(out),
        _ptr(scratch),
    )
    return out.permute(2, 0, 1)[None]


WINDOW_STEM_CHANNELS = 32  # most output channels `window_stem` computes


def window_stem_ok(x: Tensor, conv: torch.nn.Module) -> bool:
    """Whether `window_stem` applies: square float32 channels-last CPU windows ``x (N, 3, S, S)``
    and a float32 3x3 ``conv`` from 3 to at most 32 channels, with bias."""
    return (
        prelu_max_pool_ok(x)
        and x.shape[1] == 3
        and x.shape[2] == x.shape[3] >= 3
        and isinstance(conv, torch.nn.Conv2d)
        and conv.weight.shape[1:] == (3, 3, 3)
        and conv.weight.shape[0] <= WINDOW_STEM_CHANNELS
        and conv.weight.dtype == torch.float32
        and conv.bias is not None
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (0, 0)
    )


def pack_window_stem(conv: torch.nn.Conv2d, slope: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``conv``'s weight as ``(27, 32)`` rows ``(ky, kx, ci)``, bias and PReLU slopes ``(32,)``,
    zero past its output channels: the layout `window_stem` reads."""
    c = conv.weight.shape[0]
    weight = torch.zeros((27, WINDOW_STEM_CHANNELS))
    weight[:, :c] = conv.weight.detach().permute(2, 3, 1, 0).reshape(27, c)
    bias, slopes = torch.zeros(WINDOW_STEM_CHANNELS), torch.zeros(WINDOW_STEM_CHANNELS)
    assert conv.bias is not None  # `facecascade.models.layers` fuses only convs with a bias
    bias[:c] = conv.bias.detach()
    slopes[:c] = slope.detach().float().expand(c)
    return weight, bias, slopes


def window_stem(x: Tensor, packed: tuple[Tensor, Tensor, Tensor], channels: int, kernel: int, stride: int) -> Tensor:
    """A 3x3 convolution 3 -> ``channels``, PReLU and ceil-mode ``kernel x kernel / stride`` max
    pooling of windows ``x (N, 3, S, S)`` channels-last, in one pass per window; ``packed`` from
    `pack_window_stem`. Returns ``(N, channels, P, P)`` channels-last."""
    n, _, s, _ = x.shape
    p = -(-(s - 2 - kernel) // stride) + 1
    out = torch.empty((n, p, p, channels))
    scratch = torch.empty((s - 2) * (s - 2) * WINDOW_STEM_CHANNELS)
    weight, bias, slopes = packed
    _loaded().fc_window_stem(
        _ptr(x), n, s, _ptr(weight), _ptr(bias), _ptr(slopes), channels, kernel, stride, _ptr(out), _ptr(scratch)
    )
    return out.permute(0, 3, 1, 2)
