"""`cxr.Model` against the `cxr` CLI on real X-rays: the same probabilities to the bit, the same
errors, and every way of handing over an image (path, bytes, pixel array) scoring alike."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import cxr
from conftest import REPO, cli_predict, dataset_images, is_f32_text


@pytest.fixture(scope="module")
def model() -> cxr.Model:
    return cxr.Model("default")


def test_default_is_the_clis_embedded_model(model, cli):
    report = cli_predict(cli, dataset_images("covid19-radiography/COVID/*.jpg", 1))
    assert model.sha256 == report["model"]["sha256"]
    assert model.name == report["model"]["name"]
    assert model.card["file"].endswith(".onnx")
    assert "covid" in model.class_names


@pytest.mark.parametrize("source", ["default", "seed-cnn-int8", "efficientnet-lite0-three-class"])
def test_probabilities_equal_cli_predict_json_bit_for_bit(source, cli, xrays, monkeypatch):
    monkeypatch.chdir(REPO)  # shipped models are found in ./models, as the CLI finds them
    model = cxr.Model(source)
    report = cli_predict(cli, xrays, source)
    assert report["model"]["sha256"] == model.sha256
    ours = model.predict_batch(xrays)
    assert len(report["predictions"]) == len(ours) == len(xrays)
    for theirs, mine in zip(report["predictions"], ours):
        assert theirs["path"] == mine.path
        assert theirs["class"] == mine.class_name
        assert is_f32_text(theirs["p_covid"], mine.p_covid), (mine.path, theirs["p_covid"], mine.p_covid)
        # The CLI prints the float32 widened to a double (shortest repr): it reads back exactly.
        assert float(theirs["p_covid"]) == mine.p_covid
        assert sorted(theirs["probabilities"]) == sorted(model.class_names)  # the JSON map is sorted by name
        for name, text in theirs["probabilities"].items():
            assert is_f32_text(text, mine.probabilities[name]), (mine.path, name, text, mine.probabilities[name])
            assert float(text) == mine.probabilities[name]
        assert set(mine.to_dict()) == set(theirs)


def test_predict_one_equals_batch(model, xrays):
    assert model.predict(xrays[0]) == model.predict_batch([xrays[0]])[0]
    assert model.predict(str(xrays[0])) == model.predict(xrays[0])


def test_file_bytes_score_as_the_file(model, xrays):
    for path in xrays[:6]:
        from_bytes = model.predict(path.read_bytes())
        from_path = model.predict(path)
        assert from_bytes.path is None
        assert from_bytes.probabilities == from_path.probabilities


def test_uint8_array_of_a_grey_film_scores_as_the_file(model):
    # An 8-bit grey PNG decodes to k/255 values: its uint8 array is the same image.
    for path in dataset_images("hannover-covid/png/*.png", 3):
        pixels = cxr.load_image(path)
        array = as_uint8(pixels)
        assert np.array_equal(array.astype(np.float32) / 255, pixels)
        assert model.predict(array).probabilities == model.predict(path).probabilities


def write_grey16_png(path: Path, array: np.ndarray) -> None:
    """A 16-bit greyscale PNG, written by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width = array.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_uint16_array_scores_as_the_same_16_bit_png(model, tmp_path):
    film = cxr.load_image(dataset_images("covid19-radiography/COVID/*.jpg", 1)[0])
    # Spread the 8-bit film over 16 bits with low-order detail, as a detector's output would be.
    array = (film * 65535).astype(np.uint16) ^ np.uint16(0x0005)
    png = tmp_path / "film16.png"
    write_grey16_png(png, array)
    assert np.array_equal(cxr.load_image(png), array.astype(np.float32) / 65535)
    assert model.predict(array).probabilities == model.predict(png).probabilities
    assert model.predict(array.byteswap().view(array.dtype.newbyteorder())).probabilities == model.predict(png).probabilities


def test_errors_are_cxr_errors_naming_the_file_and_cause(model, tmp_path, cli):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    real = dataset_images("covid19-radiography/Normal/*.jpg", 1)[0].read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(real[: len(real) // 2])
    missing = tmp_path / "missing.png"
    report = cli_predict(cli, [empty, truncated, missing])
    for path, theirs in zip([empty, truncated, missing], report["predictions"]):
        with pytest.raises(cxr.CxrError) as raised:
            model.predict(path)
        assert str(path) in str(raised.value)
        assert str(raised.value) == theirs["error"]
    assert "empty file" in report["predictions"][0]["error"]
    assert issubclass(cxr.CxrError, Exception)


def test_batch_errors_can_be_returned_in_place(model, xrays, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    results = model.predict_batch([xrays[0], bad, xrays[1]], errors="return")
    assert isinstance(results[0], cxr.Prediction) and isinstance(results[2], cxr.Prediction)
    assert isinstance(results[1], cxr.CxrError) and str(bad) in str(results[1])
    with pytest.raises(cxr.CxrError):
        model.predict_batch([xrays[0], bad])


def test_arrays_that_cannot_be_films_are_refused(model):
    with pytest.raises(cxr.CxrError, match="minimum side"):
        model.predict(np.zeros((10, 10), np.uint8))
    with pytest.raises(cxr.CxrError, match="same grey value"):
        model.predict(np.full((300, 300), 7, np.uint16))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        model.predict(np.zeros((300, 300), np.float32))
    with pytest.raises(TypeError):
        model.predict(3)


def test_unknown_models_are_cxr_errors(tmp_path):
    with pytest.raises(cxr.CxrError, match="no model named `no-such-model`"):
        cxr.Model("no-such-model")
    with pytest.raises(cxr.CxrError, match="cannot read model"):
        cxr.Model(tmp_path / "absent.onnx")


def test_load_image_and_preprocess(model, xrays):
    pixels = cxr.load_image(xrays[0])
    assert pixels.dtype == np.float32 and pixels.ndim == 2 and 0 <= pixels.min() < pixels.max() <= 1
    tensor = model.preprocess(xrays[0])
    p = model.card["preprocess"]
    assert tensor.shape == (p["channels"], p["size"], p["size"])
    assert np.array_equal(cxr.preprocess(xrays[0], model), tensor)
    assert np.array_equal(model.preprocess(as_uint8(pixels)), tensor)  # a JPEG film is 8-bit grey


def as_uint8(pixels: np.ndarray) -> np.ndarray:
    """The 8-bit pixels an 8-bit file decoded to (k/255 values back to k)."""
    return np.rint(pixels * 255).astype(np.uint8)


def test_explain_returns_a_heatmap_over_the_model_input(model, xrays):
    heat = model.explain(xrays[0])
    size = model.card["preprocess"]["size"]
    assert heat.shape == (size, size) and heat.dtype == np.float32
    assert heat.min() == 0 and heat.max() == 1
    evidence = model.explain(xrays[0], signed=True)
    assert evidence.shape == heat.shape and evidence.min() < evidence.max()
    with pytest.raises(ValueError, match="unknown explain method"):
        model.explain(xrays[0], "gradients")


def test_inference_releases_the_gil(model, xrays):
    # While another thread scores a batch, this thread's Python code must keep running.
    window = {}

    def score():
        window["start"] = time.perf_counter()
        model.predict_batch(xrays * 2)
        window["end"] = time.perf_counter()

    ticks = []
    worker = threading.Thread(target=score)
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    start, end = window["start"], window["end"]
    middle = [t for t in ticks if start + 0.2 * (end - start) < t < end - 0.2 * (end - start)]
    assert len(middle) > 10, f"{len(middle)} ticks of this thread during the middle of a {end - start:.2f} s batch"


def test_threads_share_a_model_and_agree(model, xrays):
    expected = model.predict_batch(xrays)
    results = {}

    def run(k):
        results[k] = model.predict_batch(xrays)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results.values())


def test_more_threads_than_the_model_keeps_states_for_agree(model, xrays):
    # Each thread runs on its own session state, kept in the model for its next call; a program
    # that starts a thread per call leaves one per thread, and past 64 the model drops some.
    expected = model.predict_batch(xrays)
    results = {}

    def run(k):
        results[k] = (model.predict(xrays[k % len(xrays)]), model.predict(xrays[(k + 1) % len(xrays)]))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(80):
        assert results[k] == (expected[k % len(xrays)], expected[(k + 1) % len(xrays)]), k
