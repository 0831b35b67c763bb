"""`facecascade analyze`: folders mixing good photos with the bad-input corpus, the three output
formats, drawing, videos, exit codes, and nothing written half-way."""

import csv
import json
import shutil

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from facecascade.cli import main
from facecascade.io import load_image

from .shared_data import require


@pytest.fixture(scope="module")
def photo_path():
    return require("dlib_faces/2008_002506.jpg")


def _write_video(path, image, frames=5):
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 8_000_000  # near-lossless: the frames should look like the photo
        for i in range(frames):
            frame = image[:h, :w] if i % 2 == 0 else np.zeros((h, w, 3), np.uint8)  # face, black, face, ...
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_folder_run_reports_each_bad_file_and_writes_the_good_ones(mixed, tmp_path, capsys):
    folder, readable = mixed
    out = tmp_path / "out"
    code = main(
        [
            "analyze",
            str(folder),
            "--json",
            str(out / "r.jsonl"),
            "--csv",
            str(out / "r.csv"),
            "--coco",
            str(out / "r.json"),
            "--draw",
            str(out / "drawn"),
            "--batch-size",
            "3",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    bad = sorted(name for name, ok in readable.items() if not ok)
    good = 2 + sum(readable.values())
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == len(bad)  # one line per bad file
    for name in bad:
        assert sum(name in line for line in error_lines) == 1, name
    assert f"{len(bad)} of {len(bad) + good} input(s) failed" in err
    lines = [json.loads(line) for line in (out / "r.jsonl").read_text().splitlines()]
    assert len(lines) == good
    by_name = {line["file"].split("/")[-1]: line for line in lines}
    assert len(by_name["a.jpg"]["faces"]) == 3 and by_name["a.jpg"]["width"] == 500
    assert by_name["one_pixel.png"]["faces"] == []
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert len(rows) == sum(len(line["faces"]) for line in lines)
    coco = COCO(str(out / "r.json"))
    assert len(coco.imgs) == good and len(coco.anns) == len(rows)
    drawn = sorted(p.name for p in (out / "drawn").iterdir())
    assert len(drawn) == good and "animated.png" in drawn and "a.jpg" in drawn
    assert not list(out.rglob("*.tmp"))


def test_good_inputs_exit_zero_and_print_counts(photo_path, capsys):
    assert main(["analyze", str(photo_path)]) == 0
    assert "3 faces" in capsys.readouterr().out


def test_json_lines_to_stdout(photo_path, capsys):
    assert main(["analyze", str(photo_path), "--json", "-", "-q"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == str(photo_path) and len(line["faces"]) == 3


def test_refined_landmarks_carry_their_iterations(photo_path, capsys):
    assert main(["analyze", str(photo_path), "--aligner", "dcrn", "--attributes", "none", "--json", "-", "-q"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 3 and all(1 <= f["iterations"] <= 10 and len(f["landmarks"]) == 5 for f in faces)


def test_missing_path_empty_folder_and_bad_arguments(tmp_path, photo_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.jpg")]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["analyze", str(tmp_path / "empty")]) == 1
    assert "no image files" in capsys.readouterr().err
    assert main(["analyze", str(photo_path), "--aligner", "nope"]) == 2
    assert "unknown aligner" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", str(photo_path), "--batch-size", "0"])


def test_crash_mid_run_writes_nothing(mixed, tmp_path, monkeypatch):
    folder, _ = mixed
    from facecascade.analyze import analyzer as module

    calls = {"n": 0}
    original = module.FaceAnalyzer.analyze_arrays

    def flaky(self, arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("out of memory")
        return original(self, arrays)

    monkeypatch.setattr(module.FaceAnalyzer, "analyze_arrays", flaky)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="out of memory"):
        main(
            [
                "analyze",
                str(folder),
                "--json",
                str(out / "r.jsonl"),
                "--csv",
                str(out / "r.csv"),
                "--coco",
                str(out / "r.json"),
                "--batch-size",
                "2",
                "-q",
            ]
        )
    assert calls["n"] == 2
    assert [p.name for p in out.iterdir()] == []  # no half-written result and no temporary left


def test_video_frame_by_frame(tmp_path, photo_path, capsys):
    video = tmp_path / "clip.mp4"
    _write_video(video, load_image(photo_path))
    out = tmp_path / "out"
    assert main(["analyze", str(video), "--json", str(out / "v.jsonl"), "--draw", str(out / "d"), "-q"]) == 0
    lines = [json.loads(line) for line in (out / "v.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3, 4]
    counts = [len(line["faces"]) for line in lines]
    assert counts[1] == counts[3] == 0 and all(c >= 3 for c in counts[::2])  # black frames, photo frames
    assert sorted(p.name for p in (out / "d" / "clip").iterdir()) == [f"{i:06d}.jpg" for i in range(5)]
    assert main(["analyze", str(video), "--every", "2", "--json", str(out / "e.jsonl"), "-q"]) == 0
    assert [json.loads(line)["frame"] for line in (out / "e.jsonl").read_text().splitlines()] == [0, 2, 4]


def test_videos_in_folders_and_broken_videos(tmp_path, photo_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _write_video(folder / "clip.mp4", load_image(photo_path), frames=2)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    shutil.copy(photo_path, folder / "a.jpg")
    assert main(["analyze", str(folder), "-q", "--json", str(tmp_path / "o.jsonl")]) == 0  # videos only with --video
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 1
    assert main(["analyze", str(folder), "--video", "-q", "--json", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "1 of 3 input(s) failed" in err
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3  # a.jpg + 2 frames


def test_drawn_image_keeps_size_and_shows_attributes(photo_path, tmp_path):
    from facecascade import Faces
    from facecascade.viz import draw_faces, top_attributes

    image = load_image(photo_path)
    faces = Faces(
        np.array([[100, 50, 200, 160]]),
        [0.9],
        np.full((1, 5, 2), 150.0),
        np.array([[0.9, 0.2, 0.6, 0.99]]),
        ("Smiling", "Bald", "Young", "No_Beard"),
    )
    assert top_attributes(faces, 0, k=3) == ["No_Beard", "Smiling", "Young"]
    assert top_attributes(faces, 0, k=2) == ["No_Beard", "Smiling"]
    drawn = draw_faces(image, faces)
    assert drawn.size == (500, 375)
    changed = np.any(np.asarray(drawn) != image, axis=2)
    assert changed[160:200, 100:200].sum() > 200  # the label under the box
    assert isinstance(drawn, Image.Image)
