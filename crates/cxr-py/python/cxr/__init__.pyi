"""Type stubs of the ``cxr`` package (the public API of ``__init__.py``)."""

import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Literal, Optional, Union, overload

import numpy as np
import numpy.typing as npt

__all__ = ["CxrError", "Model", "Prediction", "load_image", "preprocess"]

XRay = Union[str, os.PathLike[str], bytes, bytearray, memoryview, npt.NDArray[np.uint8], npt.NDArray[np.uint16]]

class CxrError(Exception):
    """A file, image or model cxr cannot use; the message names it and says why."""

@dataclass(frozen=True)
class Prediction:
    path: Optional[str]
    class_name: str
    p_covid: float
    probabilities: Dict[str, float]
    def to_dict(self) -> Dict[str, Any]: ...

class Model:
    card: Dict[str, Any]
    class_names: List[str]
    def __init__(self, source: Union[str, os.PathLike[str]] = "default") -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    def predict(self, xray: XRay) -> Prediction: ...
    @overload
    def predict_batch(self, xrays: Iterable[XRay], *, errors: Literal["raise"] = "raise") -> List[Prediction]: ...
    @overload
    def predict_batch(self, xrays: Iterable[XRay], *, errors: Literal["return"]) -> List[Union[Prediction, CxrError]]: ...
    def preprocess(self, xray: XRay) -> npt.NDArray[np.float32]: ...
    def explain(
        self, xray: XRay, method: Optional[Literal["class-activation-map", "occlusion"]] = None, *, signed: bool = False
    ) -> npt.NDArray[np.float32]: ...

def load_image(xray: XRay) -> npt.NDArray[np.float32]: ...
def preprocess(xray: XRay, model: Union[str, os.PathLike[str], Model] = "default") -> npt.NDArray[np.float32]: ...
