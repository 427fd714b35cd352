"""Shared fixtures of the Python tests: real X-rays, the `cxr` CLI to compare against, and
exact float32 comparison with the CLI's printed numbers.

Images come from ../shared/datasets beside the repository (or $CXR_DATASETS); the CLI is
$CXR_BIN, else target/debug/cxr or target/release/cxr of this workspace.
"""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import List

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
DATASETS = Path(os.environ.get("CXR_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset_images(pattern: str, count: int) -> List[Path]:
    """The first `count` files matching `pattern` under the datasets, by name; fails when
    there are fewer, so a test never quietly runs on nothing."""
    found = sorted(DATASETS.glob(pattern))[:count]
    if len(found) < count:
        pytest.fail(f"{DATASETS}/{pattern}: {len(found)} files, the test needs {count} (set CXR_DATASETS)")
    return found


@pytest.fixture(scope="session")
def xrays() -> List[Path]:
    """A few dozen real films of every class and source, JPEG and PNG."""
    return (
        dataset_images("covid19-radiography/COVID/*.jpg", 8)
        + dataset_images("covid19-radiography/Normal/*.jpg", 8)
        + dataset_images("chest_xray/test/PNEUMONIA/*.jpeg", 4)
        + dataset_images("nih-chestxray14-sample/No_findings/*.jpg", 4)
        + dataset_images("hannover-covid/png/*.png", 4)
        + dataset_images("covid-chestxray-dataset/images/*.png", 4)
    )


@pytest.fixture(scope="session")
def cli() -> Path:
    """The `cxr` binary built from this workspace."""
    candidates = [os.environ.get("CXR_BIN")] if os.environ.get("CXR_BIN") else [REPO / "target" / p / "cxr" for p in ("debug", "release")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(f"no cxr binary ({', '.join(map(str, candidates))}); build it with `cargo build` or set CXR_BIN")


def cli_predict(cli: Path, files: List[Path], model: str = "default") -> dict:
    """`cxr predict --json`, with every number kept as the text the CLI printed."""
    run = subprocess.run([str(cli), "predict", "--json", "--model", model, *map(str, files)], capture_output=True, text=True, cwd=REPO)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout, parse_float=str)


def is_f32_text(text: str, value: float) -> bool:
    """Whether `text` (a number as the CLI printed it) reads back as exactly the float32
    `value`: it must lie strictly inside `value`'s rounding interval among float32s."""
    v = np.float32(value)
    if float(v) != value:
        return False
    below, above = np.nextafter(v, np.float32(-np.inf)), np.nextafter(v, np.float32(np.inf))
    low = (Decimal(float(below)) + Decimal(float(v))) / 2
    high = (Decimal(float(v)) + Decimal(float(above))) / 2
    return low < Decimal(text) < high
