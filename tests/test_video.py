"""Video files: sampled frames only, real codecs (H.264 .mp4, VP9 .webm), variable frame rate, short and
truncated files."""

import numpy as np
import pytest
from helpers import cli_inproc, one_line_error, write_video

from selfy_lab.data.datasets import build_dataset
from selfy_lab.data.video import decoder, read_sampled
from selfy_lab.core.errors import DataError
from selfy_lab.config.presets import resolve


def levels(frames):
    """The frame index each flat grey frame of :func:`helpers.write_video` encodes."""
    return np.round(frames.reshape(len(frames), -1).mean(1) / 10).astype(int)


@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("libvpx-vp9", ".webm")])
def test_sampled_frames_are_the_listed_ones(tmp_path, codec, suffix):
    path = write_video(tmp_path / f"v{suffix}", 24, codec=codec)
    seen = {}

    def pick(n):
        seen["n"] = n
        return np.array([[3, 9, 9, 20]])

    frames, inverse = read_sampled(path, pick)
    assert seen["n"] == 24 and frames.shape == (3, 48, 64, 3)  # distinct frames only
    assert list(levels(frames)[inverse.reshape(1, 4)][0]) == [3, 9, 9, 20]


def test_decoding_stops_at_the_last_sampled_frame_and_converts_only_those(tmp_path, monkeypatch):
    import av

    path = write_video(tmp_path / "long.mp4", 120)
    converted = []
    real = av.VideoFrame.to_ndarray
    monkeypatch.setattr(av.VideoFrame, "to_ndarray", lambda self, *a, **k: converted.append(1) or real(self, *a, **k))
    if decoder() == "pyav":
        frames, _ = read_sampled(path, lambda n: np.array([2, 5]))
        assert len(converted) == 2 and list(levels(frames)) == [2, 5]


def test_variable_frame_rate_is_sampled_by_frame_count(tmp_path):
    import av

    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        stream.codec_context.time_base = stream.time_base = __import__("fractions").Fraction(1, 1000)
        t = 0
        for i in range(15):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, stream.time_base
            t += 20 if i % 2 else 70  # 50 fps and 14 fps, alternating
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames, inverse = read_sampled(path, lambda n: np.arange(n))
    assert len(frames) == 15 and list(levels(frames)) == list(range(15))


def _list_run(tmp_path, line, frames=4):
    (tmp_path / "cat.txt").write_text("a\nb\n")
    (tmp_path / "val.txt").write_text(line + "\n")
    return resolve("smoke", "diving48", {"model": {"num_classes": 2, "frames": frames},
                                         "data": {"data_root": str(tmp_path), "val_list": str(tmp_path / "val.txt"),
                                                  "categories": str(tmp_path / "cat.txt"), "size": 32, "resize": [48, 64]}})


def test_a_video_shorter_than_the_clip_repeats_frames(tmp_path):
    write_video(tmp_path / "short.mp4", 3)
    clip, _ = build_dataset(_list_run(tmp_path, "short.mp4 1"), "val")[(0, 0)]
    assert clip.shape == (4, 3, 32, 32)
    assert list(levels(clip.permute(0, 2, 3, 1).numpy())) == [0, 1, 1, 2]


@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("libvpx-vp9", ".webm")])
def test_a_truncated_video_is_one_line_naming_file_and_list_line(tmp_path, codec, suffix):
    path = write_video(tmp_path / f"cut{suffix}", 60, size=(96, 128), codec=codec)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=rf"val.txt:1: .*cut{suffix}"):
        build_dataset(_list_run(tmp_path, f"cut{suffix} 0"), "val")[(0, 0)]


@pytest.mark.slow
def test_a_truncated_video_stops_training_with_one_line(tmp_path):
    path = write_video(tmp_path / "cut.mp4", 60, size=(96, 128))
    path.write_bytes(path.read_bytes()[:2000])
    (tmp_path / "cat.txt").write_text("\n".join(f"class {i}" for i in range(48)))  # Diving-48's 48 classes
    (tmp_path / "list.txt").write_text("cut.mp4 1\n")
    p = cli_inproc("train", "--preset", "smoke", "--dataset", "diving48", "--data-root", tmp_path, "--train-list",
                   tmp_path / "list.txt", "--val-list", tmp_path / "list.txt", "--categories", tmp_path / "cat.txt",
                   "--batch-size", "1", "--out", tmp_path / "run")
    assert one_line_error(p, "list.txt:1: ") and "cut.mp4" in p.stderr, p.stderr


def _write_repeated_timestamps(path, n=45):
    """An H.264 .mkv of ``n`` flat grey frames (frame i at level 5 * i) whose timestamps are irregular (50 and
    14 fps alternating) and repeat: frames 25 and 37 share the timestamp of the frame before them."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": "0"})  # no B-frames: packets come in order
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        stream.time_base = __import__("fractions").Fraction(1, 1000)
        steps = [0] + [0 if i in (25, 37) else 20 if i % 2 else 70 for i in range(1, n)]
        packets = [p for i in range(n) for p in stream.encode(
            av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, np.uint8), format="rgb24"))] + list(stream.encode())
        for packet, t in zip(packets, np.cumsum(steps)):
            packet.pts = packet.dts = int(t)  # rewritten on the packets: the encoder refuses repeated timestamps
            packet.time_base = stream.time_base
            out.mux(packet)
    with av.open(str(path)) as check:
        pts = [p.pts for p in check.demux(check.streams.video[0]) if p.size]
    assert len(pts) == n and pts[25] == pts[24] and pts[37] == pts[36]  # the file really repeats them
    return path


@pytest.mark.parametrize("which", ["pyav", "torchcodec"])
def test_frames_by_index_are_right_where_timestamps_repeat(tmp_path, monkeypatch, which):
    from selfy_lab.data import video

    if which == "torchcodec" and decoder() != "torchcodec":
        pytest.skip("torchcodec does not load on this machine")
    monkeypatch.setattr(video, "decoder", lambda: which)
    path = _write_repeated_timestamps(tmp_path / "repeats.mkv")
    asked = np.array([[25, 37, 38, 39], [3, 24, 25, 44]])
    frames, inverse = read_sampled(path, lambda n: asked)
    got = np.round(frames.reshape(len(frames), -1).mean(1) / 5).astype(int)[inverse.reshape(asked.shape)]
    assert got.tolist() == asked.tolist()
