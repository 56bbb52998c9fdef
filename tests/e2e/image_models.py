"""Custom models that decode images with Pillow, one method per FileEncoding. Pickled by value."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from runbatch.ml.model import custom_model
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature

OUTPUTS = [
    FeatureSpec("WIDTH", DataType.INT64),
    FeatureSpec("HEIGHT", DataType.INT64),
    FeatureSpec("MEAN", DataType.DOUBLE),
    FeatureSpec("FORMAT", DataType.STRING),
]
SIGNATURES = {
    "from_bytes": ModelSignature([FeatureSpec("IMAGES", DataType.BYTES)], OUTPUTS),
    "from_base64": ModelSignature([FeatureSpec("IMAGES", DataType.STRING)], OUTPUTS),
    "from_data_url": ModelSignature([FeatureSpec("IMAGES", DataType.STRING)], OUTPUTS),
}


def image_stats(data: bytes) -> dict[str, object]:
    """What the model computes for one image file, computed directly (the tests' expectation)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        raise ValueError(f"not an image: {data[:8]!r}") from None
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return {
        "WIDTH": image.width,
        "HEIGHT": image.height,
        "MEAN": float(pixels.mean()),
        "FORMAT": image.format,
    }


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["WIDTH", "HEIGHT", "MEAN", "FORMAT"])


class ImageStats(custom_model.CustomModel):
    """Width, height, mean pixel and format of each image; FORMAT is the media type for data URLs."""

    @custom_model.inference_api
    def from_bytes(self, X: pd.DataFrame) -> pd.DataFrame:
        return _frame([image_stats(b) for b in X["IMAGES"]])

    @custom_model.inference_api
    def from_base64(self, X: pd.DataFrame) -> pd.DataFrame:
        return _frame([image_stats(base64.b64decode(s, validate=True)) for s in X["IMAGES"]])

    @custom_model.inference_api
    def from_data_url(self, X: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for url in X["IMAGES"]:
            head, payload = url.split(",", 1)
            assert head.startswith("data:") and head.endswith(";base64"), head
            stats = image_stats(base64.b64decode(payload, validate=True))
            stats["FORMAT"] = head[len("data:") : -len(";base64")]
            rows.append(stats)
        return _frame(rows)


class CrashOnceImageStats(custom_model.CustomModel):
    """from_bytes, but the first runtime to reach its second batch dies there (a crash, then a retry).

    The runtime builds the model with its context, so the marker file is a class attribute, which
    travels with the class (pickled by value); the test sets it before logging the model.
    """

    marker = ""

    @custom_model.inference_api
    def from_bytes(self, X: pd.DataFrame) -> pd.DataFrame:
        self.batches = getattr(self, "batches", 0) + 1
        if self.batches == 2 and not Path(self.marker).exists():
            Path(self.marker).write_text("crashed once")
            print("crashing on purpose", flush=True)
            os._exit(17)
        return _frame([image_stats(b) for b in X["IMAGES"]])
