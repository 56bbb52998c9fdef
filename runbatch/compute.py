"""Resource requests as Snowflake writes them ("2", "500m", "8Gi", "1") and as numbers."""

from __future__ import annotations

import math
import re

from runbatch.errors import InvalidArgumentError

__all__ = ["parse_cpu", "parse_gpu", "parse_memory"]

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m)?$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$")
_UNITS = {
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def parse_cpu(text: str) -> float:
    """CPUs: "2", "0.5", or millicores "500m"."""
    m = _CPU.match(text.strip())
    if not m:
        raise InvalidArgumentError(
            f"Invalid cpu_requests {text!r}: use a number of CPUs such as '2' or '0.5', or millicores such as '500m'."
        )
    value = float(m.group(1))
    return value / 1000 if m.group(2) else value


def parse_memory(text: str) -> int:
    """Bytes from a size with a unit: "8Gi", "512Mi", "2GB"."""
    m = _MEMORY.match(text.strip())
    if not m:
        raise InvalidArgumentError(
            f"Invalid memory_requests {text!r}: give a size with a unit, such as '8Gi' or '512Mi'."
        )
    return math.ceil(float(m.group(1)) * _UNITS[m.group(2)])


def parse_gpu(text: str) -> int:
    if not text.strip().isdigit():
        raise InvalidArgumentError(f"Invalid gpu_requests {text!r}: give a whole number of GPUs.")
    return int(text)
