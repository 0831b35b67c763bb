"""The MTCNN cascade at inference: propose (P-Net) -> refine (R-Net) -> output (O-Net).

Batched end to end:

* every pyramid level of every image is packed onto ONE canvas and goes through P-Net in one call
  (`facecascade.ops.pyramid`); the face score is one dot product per response cell and box offsets
  are computed only for the cells that pass the threshold;
* each later stage makes all its crops with ONE gather over summed-area tables
  (`facecascade.ops.resample`), the exact area resampling the original weights were run with;
* suppression uses ``torchvision.ops.batched_nms`` with an image (or level) id per box.

FaceCraft's fast inference (§4.3 and §6.5) is here as two switches (`FAST_PATH` is the preset
``FaceDetector(fast=True)`` uses, with a coarser pyramid; docs/models/facecraft.md has their measured effect):

* ``suppression="block"|"peak"``: stage 1 keeps the best cell of each ``k x k`` block of each
  level's response map, or each cell that is the best of the ``k x k`` neighbourhood around it
  (`facecascade.ops.suppression`), instead of NMS within each level;
* ``patch_reuse=True``: stages 2 and 3 crop windows from the pyramid level on which they are
  about twice the stage's input size (`facecascade.ops.pyramid.reuse_levels`), one
  ``torchvision.ops.roi_align`` call on the already normalised canvas, instead of
  area-resampling them from the image.

On CPU, native kernels (`facecascade.ops.native`, built at install time when a C compiler is
present) compute the summed-area tables, the canvas (planar), the crops, P-Net's first layer with
its PReLU and pooling, R-Net's and O-Net's first layers likewise, and PReLU + pooling elsewhere;
without them the same steps run in PyTorch.

The arithmetic follows Zhang et al.'s reference code (as ported by facenet-pytorch) so that the
original weights give the original answers: window generation, calibration conventions, squaring,
crop windows, and the intersection-over-minimum NMS after O-Net. ``precision`` /
``bf16_stages`` run chosen stages in bfloat16 on CPUs that have it natively (O-Net by default,
which keeps those answers; all three on the fast path; `facecascade.models.precision`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np
import torch
import torchvision
from torch import Tensor

from ..models.layers import with_fused_layers
from ..models.mtcnn import StageOutput
from ..models.precision import PRECISIONS, resolve_precision, with_bf16_layers
from ..models.weights import MTCNNNets
from ..ops import native, resample
from ..ops.boxes import crop_windows, nms, square_boxes, top_k_per_group, vote_boxes
from ..ops.coding import apply_offsets, decode_landmarks
from ..ops.pyramid import CanvasLayout, plan_canvas, reuse_levels
from ..ops.resample import IntegralImages
from ..ops.suppression import block_maxima, local_peaks
from ..structures import Faces
from .stages import CascadeStages, WindowStage

PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125  # 1 / 128
PRE_NMS_FACTOR = 5  # with ``max_proposals``: best cells per image that go into P-Net's NMS
# ``FaceDetector(fast=True)`` (measured in docs/models/facecraft.md, "Fast path"): block max-pool suppression in
# stage 1, a coarser pyramid (0.58 instead of 0.709; §6.5: "vary threshold and image pyramids number
# to accelerate"), NMS at IoU 0.55 instead of 0.7 across levels and after R-Net (0.5 until the
# current `mtcnn` weights, whose face_mask AP it kept within 1 point only at 0.55), and all three
# stages in bf16 where the CPU has it natively (0.2 points AP@0.5 on face_mask). Patch reuse stays
# off: it measured no faster than the summed-area crops, and peak suppression lost more AP.
FAST_PATH: dict[str, Any] = {
    "suppression": "block",
    "suppression_kernel": 2,
    "scale_factor": 0.58,
    "nms_image": 0.55,
    "bf16_stages": ("pnet", "rnet", "onet"),
}
SUPPRESSIONS = {"nms": None, "block": block_maxima, "peak": local_peaks}


@dataclass(frozen=True)
class MTCNNConfig:
    """Inference settings of the cascade (defaults: the MTCNN paper and its reference code)."""

    min_face_size: float = 20.0  # smallest face side searched for, pixels
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # face probability to pass each stage
    scale_factor: float = 0.709  # pyramid step between levels (~1/sqrt(2))
    nms_level: float = 0.5  # IoU, P-Net boxes within one pyramid level
    nms_image: float = 0.7  # IoU, P-Net boxes across levels; R-Net boxes
    nms_output: float = 0.7  # intersection over the smaller box, O-Net boxes
    nms_refined: float = 0.0  # > 0: NMS at this IoU on R-Net's calibrated, squared windows before
    # O-Net (near-duplicates cost an O-Net pass each); 0: the reference (off)
    box_voting: float = 0.0  # > 0: each output box becomes the score-weighted mean of the
    # O-Net boxes overlapping it at this IoU (`ops.boxes.vote_boxes`); 0: the reference (off)
    max_proposals: int = 0  # P-Net boxes kept per image, best first (0: all);
    # also keeps PRE_NMS_FACTOR x as many cells for NMS
    pnet_band: int = 48  # P-Net response rows per pass on CPU,
    rnet_chunk: int = 64  # R-Net windows per pass, and O-Net's:
    onet_chunk: int = 16  # activations stay small and in cache
    suppression: str = "nms"  # stage 1 within a level: "nms" (reference),
    suppression_kernel: int = 2  # "block" or "peak" k x k max-pool suppression
    patch_reuse: bool = False  # crop stages 2-3 from the pyramid (FaceCraft),
    reuse_ratio: float = 1.5  # from a level where the window is >= this x
    # the stage input (else from the image)
    precision: str = "auto"  # conv/fc arithmetic of `bf16_stages`: "auto"
    bf16_stages: tuple[str, ...] = ("onet",)  # (bf16 on CPUs with native bf16), "bf16", "fp32"
    # (`facecascade.models.precision`). O-Net alone
    # keeps the reference's answers; in P-Net or
    # R-Net bf16 changes which windows pass

    def __post_init__(self) -> None:
        if not self.min_face_size > 0:
            raise ValueError(f"min_face_size must be > 0, got {self.min_face_size}")
        if not 0.0 < self.scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {self.scale_factor}")
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {self.thresholds}")
        if self.max_proposals < 0:
            raise ValueError(f"max_proposals must be >= 0, got {self.max_proposals}")
        if min(self.pnet_band, self.rnet_chunk, self.onet_chunk) < 1:
            raise ValueError("pnet_band, rnet_chunk and onet_chunk must be >= 1")
        if self.suppression not in SUPPRESSIONS:
            raise ValueError(f"suppression must be one of {', '.join(SUPPRESSIONS)}, got {self.suppression!r}")
        if self.suppression_kernel < 1 or (self.suppression == "peak" and self.suppression_kernel % 2 == 0):
            raise ValueError(f"suppression_kernel must be >= 1 (odd for 'peak'), got {self.suppression_kernel}")
        if not 0.0 <= self.nms_refined <= 1.0:
            raise ValueError(f"nms_refined must be an IoU in [0, 1] (0: off), got {self.nms_refined}")
        if not 0.0 <= self.box_voting <= 1.0:
            raise ValueError(f"box_voting must be an IoU in [0, 1] (0: off), got {self.box_voting}")
        if not self.reuse_ratio >= 1.0:
            raise ValueError(f"reuse_ratio must be >= 1, got {self.reuse_ratio}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not set(self.bf16_stages) <= set(MTCNNNets._fields):
            raise ValueError(f"bf16_stages must name stages of {MTCNNNets._fields}, got {self.bf16_stages}")


class Candidates(NamedTuple):
    """Face windows between stages."""

    boxes: Tensor  # (N, 4) float32 x1, y1, x2, y2 pixels
    scores: Tensor  # (N,) face probability of the stage that produced them
    image_index: Tensor  # (N,) int64 which image of the batch

    def select(self, index: Tensor) -> Candidates:
        return Candidates(self.boxes[index], self.scores[index], self.image_index[index])


@dataclass
class Batch:
    """Images of one `MTCNNCascade.detect` call, on the cascade's device."""

    sizes: tuple[tuple[int, int], ...]  # (h, w) per image
    integral: IntegralImages
    canvas: Tensor | None = None  # patch reuse keeps stage 1's pyramid canvas (NCHW) ...
    layout: CanvasLayout | None = None  # ... and its layout, to crop later windows from


def checkpoint_settings(meta: Mapping[str, Any], key: str = "settings") -> dict[str, Any]:
    """A checkpoint's own `MTCNNConfig` settings, ``meta[key]``: ``meta["settings"]`` for both paths
    (e.g. the default ``mtcnn``'s box voting), ``meta["fast_settings"]`` for the fast path alone."""
    own = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(meta.get(key) or {}).items()}
    unknown = set(own) - {f.name for f in fields(MTCNNConfig)}
    if unknown:
        raise ValueError(f"meta[{key!r}] names no MTCNNConfig field: {sorted(unknown)}")
    return own


def fast_preset(meta: Mapping[str, Any]) -> dict[str, Any]:
    """`FAST_PATH` with a checkpoint's own settings (`checkpoint_settings`: ``meta["settings"]``, then
    its changes to the preset, ``meta["fast_settings"]``; e.g. the WIDER-trained ``mtcnn`` keeps NMS
    at 0.7 across levels, where its AP holds: docs/models/facecraft.md, "Fast path")."""
    return {**FAST_PATH, **checkpoint_settings(meta), **checkpoint_settings(meta, "fast_settings")}


def final_boxes(boxes: Tensor, scores: Tensor, groups: Tensor, config: MTCNNConfig) -> tuple[Tensor, Tensor]:
    """The cascade's last step on O-Net's calibrated boxes: ``(kept indices, their boxes)`` after the
    intersection-over-minimum NMS at ``config.nms_output`` per group (image), box-voted when
    ``config.box_voting`` > 0."""
    keep = nms(boxes, scores, config.nms_output, groups=groups, mode="min")
    if config.box_voting > 0:
        return keep, vote_boxes(boxes, scores, keep, config.box_voting, groups=groups)
    return keep, boxes[keep]


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


def _run_chunked(net: WindowStage, crops: Tensor, chunk: int) -> StageOutput:
    """``net(crops)`` in chunks of ``chunk`` windows, outputs concatenated."""
    if len(crops) <= chunk:
        return net(crops)
    parts = [net(crops[i : i + chunk]) for i in range(0, len(crops), chunk)]
    return StageOutput._make(
        None if field[0] is None else torch.cat([t for t in field if t is not None]) for field in zip(*parts)
    )


def normalize_pixels(pixels: Tensor) -> Tensor:
    """The cascade's input normalisation ``(x - 127.5) / 128`` (inference and training)."""
    return (pixels - PIXEL_MEAN) * PIXEL_SCALE


def _image_crops(batch: Batch, image_index: Tensor, windows: Tensor, size: int) -> Tensor:
    """Normalised ``(N, 3, size, size)`` crops of integer ``windows`` area-resampled from the images."""
    crops = batch.integral.crop_resize(image_index, windows, size, PIXEL_SCALE, -PIXEL_MEAN * PIXEL_SCALE)
    return crops.permute(0, 3, 1, 2)


_POOL_FILL = -1e4  # below any conv1 activation of a normalised image, and finite (no inf - inf)


def _mask_pool_edges(stem: Tensor, layout: CanvasLayout, row0: int = 0) -> Tensor:
    """Fill the conv1 rows/columns just past odd-sized levels so pooling ignores them.

    ``stem`` holds conv1 rows ``row0 .. row0 + stem.shape[2] - 1`` of the canvas.
    """
    rows, cols = layout.pool_edges
    row1 = row0 + stem.shape[2]
    for r, x0, x1 in rows:
        if row0 <= r < row1:
            stem[:, :, r - row0, x0:x1] = _POOL_FILL
    for c, y0, y1 in cols:
        y0, y1 = max(y0, row0), min(y1, row1)
        if y0 < y1:
            stem[:, :, y0 - row0 : y1 - row0, c] = _POOL_FILL
    return stem


class Proposals(NamedTuple):
    """P-Net response cells that pass the stage-1 threshold."""

    rows: Tensor  # (K,) response-map row on the canvas
    cols: Tensor  # (K,)
    margins: Tensor  # (K,) logit of the face probability
    features: Tensor  # (K, 32) trunk features, for the box offsets


class MTCNNCascade:
    """P-Net/R-Net/O-Net inference on batches of images of any sizes.

    Args:
        nets: the three stages (`facecascade.models.load_mtcnn`).
        config: thresholds and pyramid settings.
        device: where to run.
        stages: the networks as another runtime runs them (`facecascade.detect.backends`, the
            ``nets`` exported), or ``None``: ``nets`` in PyTorch, with the native kernels, fused
            layers and bf16 stages that apply.
    """

    def __init__(self, nets: MTCNNNets, config: MTCNNConfig, device: torch.device, stages: CascadeStages | None = None):
        nets = MTCNNNets._make(net.to(device).to(memory_format=torch.channels_last) for net in nets)
        self.source_nets = nets  # before any fused or bf16 copies: see `reconfigure`
        self.runtime_stages = stages  # None: the PyTorch networks
        self.nets: CascadeStages
        self._pnet_tail: torch.nn.Module | None = None  # P-Net after the native stem's pooling
        if stages is None:
            self.precision = resolve_precision(config.precision, device)
            torch_nets = _torch_stages(nets, config, device, self.precision)
            self.nets, self._pnet_tail = torch_nets, torch_nets.pnet.body[1:]
        else:
            self.precision, self.nets = "fp32", stages
        self.config = config
        self.device = device
        # GPUs want big batches; CPUs want activations that fit in cache.
        big = 4096 if device.type == "cuda" else 0
        self._chunks = (max(config.rnet_chunk, big), max(config.onet_chunk, big))
        self._band = config.pnet_band if device.type != "cuda" else 1 << 20
        # Native CPU kernels (`facecascade.ops.native`): P-Net's first layer, PReLU and pooling in one
        # pass over a planar canvas, then the rest of its trunk; otherwise the stages on a channels-last one.
        self._native_stem = stages is None and device.type == "cpu" and native.pnet_stem_ok(nets.pnet.stem[0])

    def reconfigure(self, **changes: Any) -> MTCNNCascade:
        """A cascade on the same networks with some `MTCNNConfig` fields changed."""
        return MTCNNCascade(self.source_nets, replace(self.config, **changes), self.device, self.runtime_stages)

    # -- batch ---------------------------------------------------------------------------------
    def prepare(self, images: list[np.ndarray]) -> Batch:
        """Move RGB uint8 ``(H, W, 3)`` arrays to the device and build their summed-area tables."""
        tensors = [torch.from_numpy(im if im.flags.writeable else im.copy()).to(self.device) for im in images]
        sizes = tuple((int(im.shape[0]), int(im.shape[1])) for im in images)
        return Batch(sizes, IntegralImages.build(tensors))

    def _empty(self) -> Candidates:
        return Candidates(
            torch.zeros((0, 4), device=self.device),
            torch.zeros(0, device=self.device),
            torch.zeros(0, dtype=torch.long, device=self.device),
        )

    # -- stage 1 -------------------------------------------------------------------------------
    def _canvas(self, batch: Batch, layout: CanvasLayout) -> Tensor:
        """All pyramid levels on one normalised canvas: ``(1, 3, Hc, Wc)`` channels-last, or for the
        native stem planar ``(3, Hc, Wc + native.STEM_PAD)``. 0 (mid-grey) between levels."""
        hc, wc = layout.canvas_size
        if self._native_stem:
            canvas = torch.zeros((3, hc, wc + native.STEM_PAD), device=self.device)
            level_view = lambda y, x, h, w: canvas[:, y : y + h, x : x + w].permute(1, 2, 0)  # noqa: E731
        else:
            canvas = torch.zeros((1, hc, wc, 3), device=self.device)
            level_view = lambda y, x, h, w: canvas[0, y : y + h, x : x + w]  # noqa: E731
        resize = native.resize_area_into if self._native_stem else resample.resize_area_into
        for i, (y, x), (h, w) in zip(layout.image_index.tolist(), layout.offsets.tolist(), layout.sizes.tolist()):
            resize(batch.integral.tables[i], level_view(y, x, h, w), PIXEL_SCALE, -PIXEL_MEAN * PIXEL_SCALE)
        return canvas if self._native_stem else canvas.permute(0, 3, 1, 2)

    def _band_features(self, canvas: Tensor, layout: CanvasLayout, row0: int, row1: int) -> Tensor:
        """P-Net's trunk features ``(32, rows, Wc')`` on canvas rows ``[row0, row1)``: conv1 and PReLU,
        the conv1 positions just past odd-sized levels left out of the pooling, pooling, the rest."""
        if self._native_stem:
            assert self._pnet_tail is not None  # the torch backend's
            return self._pnet_tail(self._native_pooled_stem(canvas, layout, row0, row1))[0]
        pnet = self.nets.pnet
        return pnet.body(_mask_pool_edges(pnet.stem(canvas[:, :, row0:row1]), layout, row0=row0))[0]

    def _native_pooled_stem(self, canvas: Tensor, layout: CanvasLayout, row0: int, row1: int) -> Tensor:
        """P-Net's conv1, PReLU and pooling by the native kernel on the planar canvas."""
        conv, prelu = self.source_nets.pnet.stem  # float32 in every precision
        assert isinstance(conv, torch.nn.Conv2d) and isinstance(prelu, torch.nn.PReLU)  # `native.pnet_stem_ok`
        row_skip, col_skip = layout.pool_edge_arrays
        row_skip = row_skip - torch.tensor([row0, 0, 0])
        col_skip = col_skip - torch.tensor([0, row0, row0])
        return native.pnet_stem(canvas, layout.canvas_size[1], row0, row1, conv, prelu.weight, row_skip, col_skip)

    def _scan(self, canvas: Tensor, layout: CanvasLayout, cell_level: Tensor) -> Proposals:
        """P-Net over the canvas in bands of response rows, keeping the cells that pass.

        Response row ``i`` sees canvas rows ``2i .. 2i + 11``, so a band of rows ``[a, b)`` is
        computed exactly from canvas rows ``[2a, 2b + 10)``. On CPU, bands keep every activation
        a few MB (reused from the heap and cache-resident) instead of tens of MB that the
        allocator maps afresh, and page-faults on, at every call.
        """
        pnet = self.nets.pnet
        threshold = _logit(self.config.thresholds[0])
        height = cell_level.shape[0]
        parts = []
        for a in range(0, height, self._band):
            b = min(height, a + self._band)
            rows1 = min(2 * b + 10, layout.canvas_size[0])
            feats = self._band_features(canvas, layout, 2 * a, rows1)  # (32, b - a, Wc')
            margin = pnet.face_margin(feats[None])[0]
            rows, cols = torch.nonzero((margin >= threshold) & (cell_level[a:b] >= 0), as_tuple=True)
            parts.append((rows + a, cols, margin[rows, cols], feats[:, rows, cols].T))
        return Proposals(*(torch.cat(p) for p in zip(*parts)))

    def propose(self, batch: Batch) -> Candidates:
        """Stage 1: P-Net windows on the pyramid, suppression per level (NMS or max-pool) and NMS per
        image, calibrated, squared."""
        cfg = self.config
        layout = plan_canvas(batch.sizes, float(cfg.min_face_size), float(cfg.scale_factor))
        if layout.num_levels == 0:
            return self._empty()
        pnet = self.nets.pnet
        cell_level = torch.from_numpy(layout.cell_level_map).to(self.device)
        canvas = self._canvas(batch, layout)
        rows, cols, margins, feats = self._scan(canvas, layout, cell_level)
        if cfg.patch_reuse:
            nchw = canvas[None, :, :, : layout.canvas_size[1]] if self._native_stem else canvas
            batch.canvas, batch.layout = nchw.contiguous(), layout
        level = cell_level[rows, cols]
        scores = torch.sigmoid(margins)
        offsets = pnet.cell_offsets(feats)  # (K, 4)

        origin = torch.from_numpy(layout.offsets // 2).to(self.device)[level]  # (K, 2) y, x
        cell_xy = torch.stack([cols - origin[:, 1], rows - origin[:, 0]], 1).float()
        scale = torch.from_numpy(layout.scales.astype(np.float32)).to(self.device)[level, None]
        top_left = ((pnet.stride * cell_xy + 1) / scale).floor()
        bottom_right = ((pnet.stride * cell_xy + pnet.window) / scale).floor()
        boxes = torch.cat([top_left, bottom_right], 1)

        image_index = torch.from_numpy(layout.image_index).to(self.device)[level]
        keep = torch.arange(len(scores), device=self.device)
        if cfg.max_proposals:  # bounds the NMS work when nearly every cell passes (untrained nets)
            keep = top_k_per_group(
                torch.argsort(scores, descending=True), image_index, PRE_NMS_FACTOR * cfg.max_proposals
            )
        cells = torch.stack([rows, cols], 1) - origin  # (K, 2) within the level
        keep = keep[self._suppress_within_levels(boxes[keep], scores[keep], level[keep], cells[keep])]
        keep = keep[nms(boxes[keep], scores[keep], cfg.nms_image, groups=image_index[keep])]
        keep = top_k_per_group(keep, image_index, cfg.max_proposals)
        boxes = square_boxes(apply_offsets(boxes[keep], offsets[keep], inclusive=False))
        return Candidates(boxes, scores[keep], image_index[keep])

    def _suppress_within_levels(self, boxes: Tensor, scores: Tensor, level: Tensor, cells: Tensor) -> Tensor:
        """Indices kept by stage 1's suppression within each pyramid level, best first: NMS (the
        reference) or FaceCraft's max-pool suppression on the response cells ``(K, 2)`` row, col."""
        cfg = self.config
        if cfg.suppression == "nms":
            return nms(boxes, scores, cfg.nms_level, groups=level)
        suppress = SUPPRESSIONS[cfg.suppression]
        assert suppress is not None  # only "nms" has none
        kept = suppress(level, cells[:, 0], cells[:, 1], scores, cfg.suppression_kernel)
        return kept[torch.argsort(scores[kept], descending=True)]

    # -- stages 2 and 3 ------------------------------------------------------------------------
    def crops(self, batch: Batch, cands: Candidates, size: int) -> tuple[Tensor, Candidates]:
        """Normalised crops ``(N, 3, size, size)`` of the candidates' windows as the next stage gets
        them, and the candidates kept (windows outside the image are dropped)."""
        integral = batch.integral
        windows = crop_windows(cands.boxes, integral.widths[cands.image_index], integral.heights[cands.image_index])
        inside = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
        if not bool(inside.all()):
            cands, windows = cands.select(inside), windows[inside]
        if batch.canvas is not None:
            return self._reused_crops(batch, cands, windows, size), cands
        return _image_crops(batch, cands.image_index, windows, size), cands

    def _reused_crops(self, batch: Batch, cands: Candidates, windows: Tensor, size: int) -> Tensor:
        """Patch reuse: windows cropped from the pyramid canvas where a level is large enough
        (2x2 bilinear samples per output pixel), from the image's summed-area table elsewhere."""
        assert batch.canvas is not None and batch.layout is not None  # `propose` keeps both with patch reuse
        rois, usable = reuse_levels(
            windows, cands.image_index, batch.layout, batch.sizes, size, self.config.reuse_ratio
        )
        out = torch.empty((len(windows), 3, size, size), device=self.device)
        if bool(usable.any()):
            boxes = torch.cat([torch.zeros_like(rois[usable, :1]), rois[usable]], 1)
            out[usable] = torchvision.ops.roi_align(batch.canvas, boxes, size, 1.0, sampling_ratio=2, aligned=True)
        rest = ~usable
        if bool(rest.any()):
            out[rest] = _image_crops(batch, cands.image_index[rest], windows[rest], size)
        return out.contiguous(memory_format=torch.channels_last)

    def refine(self, batch: Batch, cands: Candidates) -> Candidates:
        """Stage 2: R-Net rescoring, NMS per image, calibration (inclusive sizes), squaring (and,
        with ``config.nms_refined``, NMS of the squared windows)."""
        if len(cands.boxes) == 0:
            return cands
        crops, cands = self.crops(batch, cands, self.nets.rnet.window)
        out = _run_chunked(self.nets.rnet, crops, self._chunks[0])
        scores = out.logits.softmax(1)[:, 1]
        passed = scores > self.config.thresholds[1]
        cands = Candidates(cands.boxes[passed], scores[passed], cands.image_index[passed])
        keep = nms(cands.boxes, cands.scores, self.config.nms_image, groups=cands.image_index)
        boxes = apply_offsets(cands.boxes[keep], out.offsets[passed][keep], inclusive=True)
        refined = Candidates(square_boxes(boxes), cands.scores[keep], cands.image_index[keep])
        if self.config.nms_refined > 0:
            keep = nms(refined.boxes, refined.scores, self.config.nms_refined, groups=refined.image_index)
            refined = refined.select(keep)
        return refined

    def output(self, batch: Batch, cands: Candidates) -> tuple[Candidates, Tensor]:
        """Stage 3: O-Net score, landmarks ``(N, 5, 2)`` and final boxes, min-NMS per image."""
        if len(cands.boxes) == 0:
            return cands, torch.zeros((0, self.nets.onet.num_landmarks, 2), device=self.device)
        crops, cands = self.crops(batch, cands, self.nets.onet.window)
        out = _run_chunked(self.nets.onet, crops, self._chunks[1])
        scores = out.logits.softmax(1)[:, 1]
        passed = scores > self.config.thresholds[2]
        boxes = cands.boxes[passed]
        assert out.landmarks is not None  # O-Net has a landmark head
        landmarks = decode_landmarks(boxes, out.landmarks[passed])
        boxes = apply_offsets(boxes, out.offsets[passed], inclusive=True)
        cands = Candidates(boxes, scores[passed], cands.image_index[passed])
        keep, boxes = final_boxes(cands.boxes, cands.scores, cands.image_index, self.config)
        return cands.select(keep)._replace(boxes=boxes), landmarks[keep]

    # -- all stages ----------------------------------------------------------------------------
    @torch.inference_mode()
    def detect(self, images: list[np.ndarray]) -> list[Faces]:
        """Faces in each of ``images`` (RGB uint8 ``(H, W, 3)`` arrays of any sizes)."""
        if not images:
            return []
        batch = self.prepare(images)
        cands = self.refine(batch, self.propose(batch))
        cands, landmarks = self.output(batch, cands)
        return _split_by_image(cands, landmarks, len(images))


def _torch_stages(nets: MTCNNNets, config: MTCNNConfig, device: torch.device, precision: str) -> MTCNNNets:
    """The PyTorch stages as the engine runs them: on CPU with the native kernels, R-Net's and
    O-Net's first layers fused (and kept float32); in bf16, `MTCNNConfig.bf16_stages` converted."""
    if device.type == "cpu" and native.enabled():
        nets = MTCNNNets(nets.pnet, with_fused_layers(nets.rnet), with_fused_layers(nets.onet))
    if precision == "bf16":
        nets = MTCNNNets._make(
            with_bf16_layers(net) if name in config.bf16_stages else net for name, net in zip(MTCNNNets._fields, nets)
        )
    return nets


def _split_by_image(cands: Candidates, landmarks: Tensor, num_images: int) -> list[Faces]:
    boxes = cands.boxes.cpu().numpy()
    scores = cands.scores.cpu().numpy()
    points = landmarks.cpu().numpy()
    owner = cands.image_index.cpu().numpy()
    return [Faces(boxes[owner == i], scores[owner == i], points[owner == i]) for i in range(num_images)]
