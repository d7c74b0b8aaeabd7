"""Classification: probabilities from logits or probs, top-k, results, and validate_classifier."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from _classify_models import (
    RGB_LABELS,
    channel_mean_onnx,
    color_folder,
    color_image,
    write_image,
)

from toolkit.errors import BadInputError, ToolkitError
from toolkit.model.spec import InputSpec, ModelSpec, OutputSpec
from toolkit.tasks.base import make_task, run_task
from toolkit.tasks.classify import (
    Classification,
    ClassifyTask,
    looks_like_probs,
    softmax,
    topk,
)


def _spec(fmt: str = "logits", labels: tuple[str, ...] = ("a", "b", "c", "d"), name=None):
    return ModelSpec(
        input=InputSpec(name="x", shape=(None, 3, 8, 8)),
        labels=labels,
        output=OutputSpec(format=fmt, name=name),
    )


# --- numerics ---------------------------------------------------------------------------------


def test_softmax_matches_definition_and_is_stable() -> None:
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 999.0]], dtype=np.float32)
    p = softmax(x, axis=1)
    e = np.exp(x[0] - x[0].max())
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-6)
    # Shift invariance: 1000 + [0, 1, -1] gives the same as [0, 1, -1], no overflow.
    np.testing.assert_allclose(p[1], softmax(np.array([[0.0, 1.0, -1.0]]))[0], rtol=1e-6)
    assert p.dtype == np.float32 and np.all(np.isfinite(p))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0.2, 0.3, 0.5]], True),
        ([[0.2, 0.3, 0.5005]], True),  # within 1e-3
        ([[0.2, 0.3, 0.51]], False),  # sums to 1.01
        ([[1.5, -0.5, 0.0]], False),  # sums to 1 but not in [0, 1]
        ([[0.5, 0.5], [0.9, 0.3]], False),  # one row off is enough
        ([[np.nan, 1.0]], False),
    ],
)
def test_looks_like_probs(rows, expected: bool) -> None:
    assert looks_like_probs(np.array(rows, dtype=np.float32)) is expected


def test_topk_order_ties_and_clipping(rng) -> None:
    p = np.array([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    idx, vals = topk(p, 3)
    assert idx.tolist() == [[1, 3, 2], [0, 1, 2]]  # ties: lower index first, like argmax
    np.testing.assert_allclose(vals[0], [0.4, 0.3, 0.2])
    idx, _ = topk(p, 10)  # k larger than C: all classes, sorted
    assert idx.tolist()[0] == [1, 3, 2, 0]
    big = rng.random((64, 1000), dtype=np.float32)
    idx, vals = topk(big, 5)
    np.testing.assert_array_equal(idx[:, 0], big.argmax(1))
    np.testing.assert_array_equal(idx, np.argsort(-big, axis=1, kind="stable")[:, :5])
    assert np.all(np.diff(vals, axis=1) <= 0)


# --- the result type --------------------------------------------------------------------------


def test_classification_validates_lengths_and_types() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Classification(np.array([1, 2]), np.array([0.5]))
    with pytest.raises(ValueError, match="differ in length"):
        Classification(np.array([1, 2]), np.array([0.5, 0.2]), ("only-one",))
    with pytest.raises(ValueError, match="1-D"):
        Classification(np.array([[1, 2]]), np.array([[0.5, 0.2]]))
    with pytest.raises(ValueError, match="integers"):
        Classification(np.array([1.0, 2.0]), np.array([0.5, 0.2]))


def test_classification_to_dict_masks_and_default_labels() -> None:
    c = Classification(np.array([2, 0, 1]), np.array([0.7, 0.2, 0.1]), ("spot", "ok", "scratch"))
    assert c.to_dict() == {
        "top": [
            {"class_id": 2, "label": "spot", "confidence": pytest.approx(0.7)},
            {"class_id": 0, "label": "ok", "confidence": pytest.approx(0.2)},
            {"class_id": 1, "label": "scratch", "confidence": pytest.approx(0.1)},
        ]
    }
    assert (c.top1, c.top1_label) == (2, "spot")
    sub = c[c.confidence > 0.15]
    assert sub.class_id.tolist() == [2, 0] and sub.labels == ("spot", "ok")
    assert c[1:].labels == ("ok", "scratch")
    assert Classification(np.array([3]), np.array([1.0])).labels == ("3",)
    assert c.class_id.dtype == np.int64 and c.confidence.dtype == np.float32


# --- the task -----------------------------------------------------------------------------------


def test_logits_are_softmaxed_and_ranked() -> None:
    logits = np.array([[2.0, 0.0, 1.0, -1.0], [0.0, 0.0, 5.0, 0.0]], dtype=np.float32)
    task = ClassifyTask(_spec(), topk=2)
    res = task.postprocess({"out": logits}, [None, None])
    expected = softmax(logits)
    assert [r.class_id.tolist() for r in res] == [[0, 2], [2, 0]]
    np.testing.assert_allclose(res[0].confidence, expected[0, [0, 2]], rtol=1e-6)
    assert res[0].labels == ("a", "c")
    np.testing.assert_allclose(task.probabilities({"out": logits}).sum(1), 1.0, rtol=1e-6)


def test_probs_format_is_used_as_is() -> None:
    # Multi-label sigmoid scores: not a distribution, but the spec says probs.
    scores = np.array([[0.9, 0.8, 0.1, 0.05]], dtype=np.float32)
    [res] = ClassifyTask(_spec("probs"), topk=4).postprocess({"p": scores}, [None])
    np.testing.assert_allclose(res.confidence, [0.9, 0.8, 0.1, 0.05])


def test_logits_that_already_are_probabilities_are_not_softmaxed_twice() -> None:
    probs = np.array([[0.7, 0.1, 0.15, 0.05]], dtype=np.float32)
    [res] = ClassifyTask(_spec("logits"), topk=1).postprocess({"o": probs}, [None])
    assert res.top1 == 0 and res.top1_confidence == pytest.approx(0.7)
    # A second softmax would have given ~0.36.
    assert softmax(probs)[0, 0] < 0.4


def test_output_shapes_and_selection() -> None:
    logits = np.array([[0.0, 3.0, 1.0, 0.0]], dtype=np.float32)
    task = ClassifyTask(_spec(name="second"), topk=1)
    four_d = logits[:, :, None, None]
    other = np.array([[9.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    # The spec names the output: it wins over the first one.
    assert task.postprocess({"first": other, "second": four_d}, [None])[0].top1 == 1
    # A name the session does not have: the first output.
    assert ClassifyTask(_spec(name="gone"), topk=1).postprocess({"x": other}, [None])[0].top1 == 0
    with pytest.raises(BadInputError, match=r"\[N, C\] or \[N, C, 1, 1\]"):
        task.postprocess({"second": np.zeros((1, 4, 2, 2), np.float32)}, [None])
    with pytest.raises(ToolkitError, match="2 results for 1 images"):
        task.postprocess({"second": np.zeros((2, 4), np.float32)}, [None])


@pytest.mark.parametrize(
    ("fmt", "value", "p1"), [("logits", 2.0, 1 / (1 + np.exp(-2.0))), ("probs", 0.3, 0.3)]
)
def test_single_column_output_is_binary(fmt: str, value: float, p1: float) -> None:
    task = ClassifyTask(_spec(fmt, labels=("good", "bad")), topk=2)
    [res] = task.postprocess({"o": np.array([[value]], np.float32)}, [None])
    probs = dict(zip(res.labels, res.confidence.tolist(), strict=True))
    assert probs == {"bad": pytest.approx(p1), "good": pytest.approx(1 - p1)}


def test_labels_beyond_the_spec_are_numbers() -> None:
    [res] = ClassifyTask(_spec(labels=("a",)), topk=2).postprocess(
        {"o": np.array([[0.0, 5.0, 1.0]], np.float32)}, [None]
    )
    assert res.labels == ("1", "2")


def test_preprocess_uses_the_shared_function() -> None:
    from toolkit.tasks.preprocess import preprocess

    spec = _spec()
    frames = [color_image("red", (10, 14)), color_image("blue", (8, 8))]
    inputs, metas = ClassifyTask(spec).preprocess(frames)
    assert list(inputs) == ["x"] and inputs["x"].shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(inputs["x"], preprocess(frames, spec)[0])
    assert metas[0].orig_hw == (10, 14)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "detect"}, "needs a classifier"),
        ({"output": OutputSpec(format="yolov8")}, "not a classifier output"),
    ],
)
def test_task_rejects_non_classifiers(changes: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        ClassifyTask(replace(_spec(), **changes))
    with pytest.raises(BadInputError, match="at least 1"):
        ClassifyTask(_spec(), topk=0)


def test_make_task() -> None:
    task = make_task(_spec(), topk=3)
    assert isinstance(task, ClassifyTask) and task.topk == 3
    # A detector spec gets the detection task; classifier-only options are ignored.
    from toolkit.tasks.detect import DetectTask

    det = replace(_spec(), task="detect", output=OutputSpec(format="yolov8"))
    assert isinstance(make_task(det, topk=3, conf=0.5), DetectTask)
    with pytest.raises(BadInputError, match="not a detector output"):
        make_task(replace(_spec(), task="detect"))


# --- end to end on real ONNX Runtime sessions -------------------------------------------------


def test_validate_classifier_matches_an_independent_ort_run(tiny_onnx: Path, tmp_path: Path, rng):
    """The tiny model is random: val's numbers must equal a direct ORT computation."""
    import onnxruntime as ort

    from toolkit.backends import open_session
    from toolkit.evaluate.classify import validate_classifier
    from toolkit.model.modelfile import read_spec
    from toolkit.tasks.preprocess import preprocess

    labels = ("ok", "scratch", "spot")
    counts = {"ok": 4, "scratch": 3, "spot": 2}
    files: list[tuple[Path, int]] = []
    for label, k in counts.items():
        for i in range(k):
            img = rng.integers(0, 256, (int(rng.integers(20, 40)), 36, 3), dtype=np.uint8)
            files.append(
                (write_image(tmp_path / "val" / label / f"{i}.png", img), labels.index(label))
            )

    spec = read_spec(tiny_onnx)
    frames = [cv2.imread(str(p)) for p, _ in files]
    x, _ = preprocess(frames, spec)
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    pred = logits.argmax(1)
    truth = np.array([t for _, t in files])

    with open_session(tiny_onnx, "ort-cpu") as s:
        result = validate_classifier(s, tmp_path / "val", batch=4)
    assert result["n"] == 9
    assert result["top1"] == pytest.approx(float((pred == truth).mean()))
    assert result["top5"] is None  # 3 classes: top-5 would be trivially 1.0
    assert {k: v["n"] for k, v in result["per_class"].items()} == counts
    for label, row in result["per_class"].items():
        mask = truth == labels.index(label)
        assert row["top1"] == pytest.approx(float((pred[mask] == truth[mask]).mean()))


def test_validate_classifier_exact_accuracy_on_pure_colours(tmp_path: Path) -> None:
    from toolkit.backends import open_session
    from toolkit.evaluate.classify import validate_classifier

    model = channel_mean_onnx(tmp_path / "cm.onnx", keepdims=True)  # [N, 3, 1, 1] output
    data = color_folder(tmp_path / "val", per_class=3)
    with open_session(model, "ort-cpu") as s:
        perfect = validate_classifier(s, data, batch=2)
        assert perfect["top1"] == 1.0 and perfect["n"] == 9
        assert perfect["classes"] == list(RGB_LABELS)
        # One blue image filed under "red": exactly (n - 1) / n, and only red loses.
        write_image(data / "red" / "9.png", color_image("blue"))
        one_wrong = validate_classifier(s, data, batch=4)
    assert one_wrong["n"] == 10
    assert one_wrong["top1"] == pytest.approx(9 / 10)
    assert one_wrong["per_class"]["red"] == {"n": 4, "top1": pytest.approx(3 / 4)}
    assert one_wrong["per_class"]["blue"] == {"n": 3, "top1": 1.0}


def test_validate_classifier_topk_counts_near_misses(tmp_path: Path) -> None:
    """A blue image filed under "red" misses top-1 but red is its runner-up (ties: low index)."""
    from toolkit.backends import open_session
    from toolkit.evaluate.classify import validate_classifier

    labels = (*RGB_LABELS, "c3", "c4", "c5")
    six = channel_mean_onnx(tmp_path / "cm6.onnx", labels=labels, extra_classes=3)
    three = channel_mean_onnx(tmp_path / "cm3.onnx")
    data = color_folder(tmp_path / "val", per_class=2)
    write_image(data / "red" / "9.png", color_image("blue"))
    with open_session(six, "ort-cpu") as s6, open_session(three, "ort-cpu") as s3:
        r6 = validate_classifier(s6, data)
        r3 = validate_classifier(s3, data, topk=2)
    assert r6["classes"] == list(labels) and r6["n"] == 7
    assert r6["top1"] == pytest.approx(6 / 7) and r6["top5"] == 1.0
    assert r3["top1"] == pytest.approx(6 / 7) and r3["top2"] == 1.0 and "top5" not in r3


def test_validate_classifier_more_folders_than_outputs(tmp_path: Path) -> None:
    from toolkit.backends import open_session
    from toolkit.evaluate.classify import validate_classifier

    model = channel_mean_onnx(tmp_path / "nolabels.onnx", labels=())
    data = tmp_path / "val"
    for folder in ("a", "b", "c", "d"):
        write_image(data / folder / "0.png", color_image("red"))
    with open_session(model, "ort-cpu") as s, pytest.raises(BadInputError, match="4 classes"):
        validate_classifier(s, data)


def test_run_task_pads_static_batches(tmp_path: Path) -> None:
    from toolkit.backends import open_session

    frames = [color_image(RGB_LABELS[i % 3]) for i in range(5)]
    static = channel_mean_onnx(
        tmp_path / "static.onnx", batch=2, softmax=True, output_format="probs"
    )
    dynamic = channel_mean_onnx(tmp_path / "dynamic.onnx", softmax=True, output_format="probs")
    with open_session(static, "ort-cpu") as s2, open_session(dynamic, "ort-cpu") as sd:
        assert s2.max_batch == 2
        a = run_task(s2, ClassifyTask(s2.spec, topk=3), frames)
        b = run_task(sd, ClassifyTask(sd.spec, topk=3), frames)
    assert len(a) == 5
    assert [r.top1_label for r in a] == [RGB_LABELS[i % 3] for i in range(5)]
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_allclose(ra.confidence, rb.confidence, rtol=1e-6)
