"""cxr: COVID-19 chest X-ray classification from Python, with the ``cxr`` CLI's own code.

The models run with tract (pure Rust, inside this package's extension module): no PyTorch,
no ONNX Runtime. Decoding, preprocessing and inference are the CLI's, so a probability from
``Model.predict`` is the same 32-bit float that ``cxr predict --json`` prints for that file.

    import cxr
    model = cxr.Model("default")
    p = model.predict("chest.png")
    print(p.class_name, p.p_covid)

Research use only: not a medical device, not for diagnosis.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np

from cxr import _native
from cxr._native import CxrError

__all__ = ["CxrError", "Model", "Prediction", "load_image", "preprocess"]

#: What every function taking an X-ray accepts: a path, the bytes of a PNG/JPEG/DICOM file,
#: or a 2-D ``uint8``/``uint16`` numpy array of grey pixels.
XRay = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray]


@dataclass(frozen=True)
class Prediction:
    """One X-ray's result.

    ``probabilities`` maps each class name to its probability, in the model's class order;
    the values are the model's 32-bit floats, widened exactly to Python floats.
    """

    path: Optional[str]
    class_name: str
    p_covid: float
    probabilities: Dict[str, float]

    def to_dict(self) -> Dict[str, Any]:
        """The fields of one entry of ``cxr predict --json``'s ``predictions``."""
        return {"path": self.path, "class": self.class_name, "p_covid": self.p_covid, "probabilities": dict(self.probabilities)}


class Model:
    """A model card and its network, loaded once and reusable from several threads.

    ``source`` is ``"default"`` (the model built into this package, the same file as the
    ``cxr`` binary's default), the name of a shipped model (looked up in ``$CXR_MODELS``,
    then ``./models``), or a path to an ``.onnx`` file (card beside it) or a ``.card.json``.
    The card is checked against the file (sha256, input shape, outputs) before anything runs.

    Raises ``CxrError`` naming the file and the cause when the model cannot be loaded.
    """

    def __init__(self, source: Union[str, "os.PathLike[str]"] = "default") -> None:
        self._model = _native.Model(os.fspath(source))
        #: The model card (the ``.card.json`` fields) as a dict.
        self.card: Dict[str, Any] = json.loads(self._model.card_json)
        #: Class names, in the order of every probability list.
        self.class_names: List[str] = list(self._model.class_names)
        self._covid = self._model.covid_index

    @property
    def name(self) -> str:
        """The card's model name, e.g. ``seed-cnn``."""
        return self.card["name"]

    @property
    def sha256(self) -> str:
        """sha256 of the ONNX file, as the card records it."""
        return self.card["sha256"]

    @property
    def threshold(self) -> float:
        """The card's decision threshold on P(covid)."""
        return self.card["threshold"]

    def __repr__(self) -> str:
        return f"cxr.Model({self.name!r}, {self.card['architecture']}, {self.card['precision']}, sha256 {self.sha256[:12]}, from {self._model.model_path})"

    def predict(self, xray: XRay) -> Prediction:
        """Classifies one X-ray. Raises ``CxrError`` (naming the file) if it cannot be read
        or is not a chest film (too small, too elongated, blank)."""
        (result,) = self.predict_batch([xray])
        assert isinstance(result, Prediction)
        return result

    def predict_batch(self, xrays: Iterable[XRay], *, errors: str = "raise") -> List[Union[Prediction, CxrError]]:
        """Classifies several X-rays in one call (the GIL is released for all of them).

        ``errors="raise"`` raises ``CxrError`` for the first input that fails;
        ``errors="return"`` puts a ``CxrError`` in that input's place and goes on.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        xrays = list(xrays)
        outcomes = self._model.predict_many([_as_input(x) for x in xrays])
        results: List[Union[Prediction, CxrError]] = []
        for xray, outcome in zip(xrays, outcomes):
            if isinstance(outcome, str):
                if errors == "raise":
                    raise CxrError(outcome)
                results.append(CxrError(outcome))
            else:
                results.append(self._prediction(_path_of(xray), *outcome))
        return results

    def preprocess(self, xray: XRay) -> np.ndarray:
        """The network's input for one X-ray: ``float32 [channels, size, size]``, as the
        card's preprocessing (resize, intensity, normalisation) makes it."""
        shape, values = self._model.preprocess(_as_input(xray))
        return _f32_array(values, shape)

    def explain(self, xray: XRay, method: Optional[str] = None, *, signed: bool = False) -> np.ndarray:
        """A heatmap of the evidence for P(covid): ``float32 [size, size]`` over the image as
        the model sees it (resized to its input), as ``cxr explain`` computes it.

        ``method`` is ``"class-activation-map"``, ``"occlusion"`` or ``None`` (the model's
        default). By default values are scaled to ``[0, 1]`` for drawing; ``signed=True``
        returns the unscaled evidence, positive where the image raised P(covid).
        """
        shape, values, evidence = self._model.explain(_as_input(xray), method)
        return _f32_array(evidence if signed else values, shape)

    def _prediction(self, path: Optional[str], probabilities: List[float], class_index: int) -> Prediction:
        return Prediction(
            path=path,
            class_name=self.class_names[class_index],
            p_covid=probabilities[self._covid],
            probabilities=dict(zip(self.class_names, probabilities)),
        )


def load_image(xray: XRay) -> np.ndarray:
    """Decodes an X-ray (PNG, JPEG or DICOM, recognised from its bytes) with the CLI's decoder:
    ``float32 [height, width]`` grey values in ``[0, 1]``. Raises ``CxrError`` naming the file."""
    width, height, values = _native.load_image(_as_input(xray))
    return _f32_array(values, (height, width))


def preprocess(xray: XRay, model: Union[str, "os.PathLike[str]", Model] = "default") -> np.ndarray:
    """``model``'s input for one X-ray (see ``Model.preprocess``). Pass a loaded ``Model``
    rather than a name when preprocessing many images: a name loads the model each call."""
    if not isinstance(model, Model):
        model = Model(model)
    return model.preprocess(xray)


def _as_input(xray: XRay) -> Any:
    """An X-ray in one of the shapes the extension takes: a path string, file bytes, or
    ``(width, height, bits, pixel bytes)``."""
    if isinstance(xray, np.ndarray):
        if xray.ndim != 2:
            raise ValueError(f"a pixel array must be 2-D (height, width) grey, not shape {xray.shape}")
        if xray.dtype.kind != "u" or xray.dtype.itemsize not in (1, 2):
            raise ValueError(f"a pixel array must be uint8 or uint16, not {xray.dtype}; decode files with cxr.load_image or pass their path")
        native = np.uint8 if xray.dtype.itemsize == 1 else np.uint16  # either byte order in, native out
        height, width = xray.shape
        return (width, height, 8 * xray.dtype.itemsize, np.ascontiguousarray(xray, dtype=native).tobytes())
    if isinstance(xray, (bytes, bytearray, memoryview)):
        return bytes(xray)
    if isinstance(xray, (str, os.PathLike)):
        return os.fsdecode(os.fspath(xray))
    raise TypeError(f"expected a path, file bytes or a 2-D uint8/uint16 numpy array, not {type(xray).__name__}")


def _path_of(xray: XRay) -> Optional[str]:
    return os.fsdecode(os.fspath(xray)) if isinstance(xray, (str, os.PathLike)) else None


def _f32_array(values: bytes, shape: Iterable[int]) -> np.ndarray:
    return np.frombuffer(values, dtype=np.float32).reshape(tuple(shape)).copy()
