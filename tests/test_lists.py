"""Clip lists in the formats users download: TSN lists, two-column video lists (MMAction2, FineGym), the
Something-Something V2 and Diving-48 JSON annotations; class names from text, labels.json or a vocabulary."""
import json

import numpy as np
import pytest
from helpers import SHARED, write_video

from selfy_lab.data.datasets import build_dataset
from selfy_lab.data.lists import detect_format, read_class_names, read_clips
from selfy_lab.core.errors import DataError
from selfy_lab.config.presets import resolve

SSV2_LABELS = {"Holding something next to something": "1", "Pushing something from left to right": "0"}


def test_formats_are_told_apart_from_the_file(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"id": "7", "label": "x", "template": "Holding [something] next to "
                                                  "[something]", "placeholders": ["a", "b"]}]))
    (tmp_path / "b.json").write_text(json.dumps([{"vid_name": "v1", "label": 3, "start_frame": 0, "end_frame": 9}]))
    (tmp_path / "c.txt").write_text("videos/abc.mp4 4\n")
    assert detect_format(SHARED / "v1_val_list_excerpt.txt") == "tsn"
    assert [detect_format(tmp_path / f) for f in ("a.json", "b.json", "c.txt")] == ["ssv2-json", "diving48-json", "two-column"]
    (tmp_path / "d.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        detect_format(tmp_path / "d.json")
    (tmp_path / "e.txt").write_text("a b c d\n")
    with pytest.raises(DataError, match="4 columns"):
        detect_format(tmp_path / "e.txt")


def test_something_something_v2_json_with_its_labels_json(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps(SSV2_LABELS))
    names = read_class_names(tmp_path / "labels.json")
    assert names == ["Pushing something from left to right", "Holding something next to something"]
    items = [{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
              "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
             {"id": "42", "label": "pushing pen from left to right", "template": "Pushing [something] from left to right",
              "placeholders": ["pen"]}]
    (tmp_path / "validation.json").write_text(json.dumps(items))
    clips = read_clips(tmp_path / "validation.json", root=tmp_path / "videos", num_classes=2, class_names=names)
    assert [(c.path, c.label) for c in clips] == [(tmp_path / "videos" / "78687.webm", 1), (tmp_path / "videos" / "42.webm", 0)]
    items.append({"id": "9", "template": "Spinning [something]"})
    (tmp_path / "validation.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"validation.json: item 3: template 'Spinning \[something\]' is not a class"):
        read_clips(tmp_path / "validation.json", class_names=names)
    (tmp_path / "test.json").write_text(json.dumps([{"id": "1"}]))
    with pytest.raises(DataError, match="item 1: expected an object with 'id' and 'template'"):
        read_clips(tmp_path / "test.json", "ssv2-json", class_names=names)


def test_diving48_json_and_vocabulary(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps([["Back", "15som", "05Twis", "FREE"], ["Forward", "PIKE"]]))
    assert read_class_names(tmp_path / "vocab.json") == ["Back 15som 05Twis FREE", "Forward PIKE"]
    items = [{"vid_name": "-mmq0PT-u8k_00155", "label": 1, "start_frame": 0, "end_frame": 63},
             {"vid_name": "-mmq0PT-u8k_00156", "label": 0, "start_frame": 10, "end_frame": 40}]
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps(items))
    clips = read_clips(tmp_path / "Diving48_V2_test.json", root=tmp_path / "rgb", num_classes=2)
    assert clips[1].path == tmp_path / "rgb" / "-mmq0PT-u8k_00156.mp4"
    assert (clips[1].label, clips[1].start, clips[1].end, clips[1].num_frames) == (0, 10, 40, 31)
    items[0]["end_frame"] = -3
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match="item 1: start_frame 0 and end_frame -3"):
        read_clips(tmp_path / "Diving48_V2_test.json", num_classes=2)
    items[0]["end_frame"], items[1]["label"] = 63, 48
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps(items))
    with pytest.raises(DataError, match="item 2: label 48 is out of range for 2 classes"):
        read_clips(tmp_path / "Diving48_V2_test.json", num_classes=2)


def test_two_column_lists_mmaction_paths_and_finegym_clip_ids(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "A0xAXXysHUo_002184_002237_A_0006_0008.mp4").write_bytes(b"")
    (tmp_path / "gym99_val.txt").write_text("A0xAXXysHUo_002184_002237_A_0006_0008 12\nsome/other.webm 3\n")
    clips = read_clips(tmp_path / "gym99_val.txt", root=tmp_path / "clips", num_classes=99)
    assert clips[0].path == tmp_path / "clips" / "A0xAXXysHUo_002184_002237_A_0006_0008.mp4" and clips[0].label == 12
    assert clips[1].path == tmp_path / "clips" / "some" / "other.webm"
    (tmp_path / "bad.txt").write_text("x.mp4 1\ny.mp4 one\n")
    with pytest.raises(DataError, match=r"bad.txt:2: the label must be an integer, got 'one'"):
        read_clips(tmp_path / "bad.txt", num_classes=99)
    with pytest.raises(DataError, match="unknown list format"):
        read_clips(tmp_path / "bad.txt", "csv")


@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("libvpx-vp9", ".webm")])
def test_a_diving48_clip_is_sampled_inside_its_listed_range(tmp_path, codec, suffix):
    write_video(tmp_path / "rgb" / f"v{suffix}", 20, codec=codec)
    (tmp_path / "vocab.json").write_text(json.dumps([["a"], ["b"]]))
    (tmp_path / "val.json").write_text(json.dumps([{"vid_name": f"v{suffix}", "label": 1, "start_frame": 8,
                                                    "end_frame": 15}]))
    run = resolve("smoke", "diving48", {"model": {"num_classes": 2, "frames": 4},
                                        "data": {"data_root": str(tmp_path / "rgb"), "val_list": str(tmp_path / "val.json"),
                                                 "categories": str(tmp_path / "vocab.json"), "size": 32, "resize": [48, 64]}})
    clip, label = build_dataset(run, "val")[(0, 0)]
    levels = clip.float().mean((1, 2, 3)).numpy() / 10  # frame index of each sampled frame
    assert label == 1 and clip.shape == (4, 3, 32, 32)
    assert np.all(levels > 7.5) and np.all(levels < 15.5) and np.all(np.diff(levels) > 0)  # within 8..15, in order
