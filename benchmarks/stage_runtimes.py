"""R-Net and O-Net in other runtimes and precisions, against the engine's own stages, with parity.

The windows each stage gets on the two VGA benchmark photos (the cascade's own crops,
`MTCNNCascade.crops`) go through: the engine's PyTorch stage (native first layer, O-Net in bf16
where the CPU has it); ONNX Runtime on the exported float32 network (`facecascade export onnx`'s
file) and on an int8 copy (``onnxruntime.quantization.quantize_static``: weights per output
channel, s8; activations u8, calibrated on the windows of ``--calib`` face_mask *training* photos,
never the timed ones); OpenVINO on the same file in float32 and in bf16 (its
``INFERENCE_PRECISION_HINT``; ``--no-openvino`` leaves it out). 1 thread, chunks as the engine
runs them, median of ``--calls`` after 3 warm-up calls. Parity is against the float32 PyTorch
network: the largest and mean change of the face probability, and the share of windows whose
pass/fail at the stage's threshold flips.

    python benchmarks/stage_runtimes.py --weights mtcnn
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import bench_images

STAGES = {"rnet": 1, "onet": 2}  # index of the stage's threshold in `MTCNNConfig.thresholds`


def stage_windows(cascade, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The normalised crops R-Net and O-Net get on ``images`` (one image at a time)."""
    out: dict[str, list[torch.Tensor]] = {"rnet": [], "onet": []}
    with torch.inference_mode():
        for image in images:
            batch = cascade.prepare([image])
            proposed = cascade.propose(batch)
            out["rnet"].append(cascade.crops(batch, proposed, cascade.nets.rnet.window)[0])
            refined = cascade.refine(batch, proposed)
            out["onet"].append(cascade.crops(batch, refined, cascade.nets.onet.window)[0])
    return {name: torch.cat(parts).contiguous() for name, parts in out.items()}


def quantized(onnx_file: Path, calibration: torch.Tensor, out: Path) -> Path:
    """An int8 copy of ``onnx_file`` (per-channel s8 weights, u8 activations, QDQ format)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(onnx_file)).graph.input[0].name

    class Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self.name = input_name
            self.batches = iter([{self.name: calibration[i : i + 64].numpy()} for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(onnx_file),
        str(out),
        Windows(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def logits_of(runner):
    """``crops -> face logits`` of a `facecascade.export.runtimes` runner (its first output)."""
    return lambda crops: runner(crops)[0]


def chunked_ms(run, crops: torch.Tensor, chunk: int, calls: int) -> tuple[float, torch.Tensor]:
    """Median ms of ``run`` over ``crops`` in chunks, and its logits."""
    parts = [crops[i : i + chunk] for i in range(0, len(crops), chunk)]
    times = []
    with torch.inference_mode():
        for call in range(calls + 3):
            start = time.perf_counter()
            logits = torch.cat([run(p) for p in parts])
            if call >= 3:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), logits


def parity(logits: torch.Tensor, reference: torch.Tensor, threshold: float) -> tuple[float, float, float]:
    """Largest and mean change of the face probability, and the share of pass/fail flips."""
    p, ref = logits.float().softmax(1)[:, 1], reference.softmax(1)[:, 1]
    flips = ((p > threshold) != (ref > threshold)).float().mean()
    return float((p - ref).abs().max()), float((p - ref).abs().mean()), float(flips)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="mtcnn")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--calib", type=int, default=40, help="face_mask training photos to calibrate on")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--no-openvino", action="store_true", help="leave OpenVINO out")
    args = parser.parse_args(argv)

    from facecascade import FaceDetector
    from facecascade.data import read_dataset, select_split
    from facecascade.export.cache import cached_export
    from facecascade.export.runtimes import OpenVinoRunner, OrtRunner
    from facecascade.io import load_image

    torch.set_num_threads(1)
    detector = FaceDetector(weights=args.weights)
    cascade, folder = detector.cascade, cached_export(args.weights)
    face_mask = read_dataset("voc", args.data / "face_mask/annotations", args.data / "face_mask/images")
    records = select_split(face_mask, "train")
    calibration = stage_windows(cascade, [np.asarray(load_image(r.image)) for r in records[: args.calib]])
    timed = stage_windows(cascade, [np.asarray(image) for image in bench_images(args.data).values()])
    print(f"weights {args.weights!r}, both VGA photos' windows, 1 thread, median of {args.calls} calls")
    print("| stage | windows | runtime | ms | vs engine | max / mean change of p(face) | pass/fail flips |")
    print("|---|---:|---|---:|---:|---|---:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, t_index in STAGES.items():
            crops, threshold = timed[name], cascade.config.thresholds[t_index]
            chunk = cascade.config.rnet_chunk if name == "rnet" else cascade.config.onet_chunk
            reference = getattr(cascade.source_nets, name)(crops).logits
            engine_net = getattr(cascade.nets, name)

            def engine(c: torch.Tensor, net=engine_net) -> torch.Tensor:
                return net(c.contiguous(memory_format=torch.channels_last)).logits

            onnx_file, cpu = folder / f"{name}.onnx", torch.device("cpu")
            int8 = quantized(onnx_file, calibration[name], Path(tmp) / f"{name}_int8.onnx")
            runs = {
                "engine (PyTorch)": engine,
                "ONNX Runtime float32": logits_of(OrtRunner(onnx_file, cpu)),
                "ONNX Runtime int8": logits_of(OrtRunner(int8, cpu)),
            }
            if not args.no_openvino:
                runs["OpenVINO float32"] = logits_of(OpenVinoRunner(onnx_file, cpu))
                runs["OpenVINO bf16"] = logits_of(OpenVinoRunner(onnx_file, cpu, precision="bf16"))
            base = None
            for runtime, run in runs.items():
                ms, logits = chunked_ms(run, crops, chunk, args.calls)
                base = base or ms
                worst, mean, flips = parity(logits, reference, threshold)
                rows.append({"stage": name, "runtime": runtime, "ms": ms, "max": worst, "mean": mean, "flips": flips})
                print(
                    f"| {name} | {len(crops)} | {runtime} | {ms:.1f} | {base / ms:.2f}x | {worst:.4f} / {mean:.4f} | "
                    f"{100 * flips:.1f} % |",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    main()
