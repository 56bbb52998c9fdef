"""Speech recognition over audio files on a stage: the transcripts of the pipeline called directly.

WAV and FLAC clips are generated with numpy and written with soundfile, uploaded to a stage,
named by full stage paths in a column (``InputFormat.FULL_STAGE_PATH``), and transcribed by a
tiny CTC speech-recognition pipeline (tests/hf_models.py); a corrupt and a missing clip become
error rows.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from runbatch.ml.model.batch import FileEncoding, InputFormat, InputSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.hf_models import TinyPipelines, shared_pipelines, wav_bytes

POOL = "SYSTEM_COMPUTE_POOL_CPU"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def _flac(seed: int, seconds: float) -> bytes:
    import soundfile

    samples = np.sin(np.linspace(0, 400 * seconds, int(16_000 * seconds))) * 0.3
    samples += np.random.default_rng(seed).normal(0, 0.05, samples.shape)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), 16_000, format="FLAC")
    return buffer.getvalue()


def _decoded(data: bytes) -> dict[str, object]:
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return {"raw": samples.mean(axis=1, dtype=np.float32), "sampling_rate": rate}


def test_audio_files_on_a_stage_are_transcribed_like_the_pipeline(
    embedded_session: Session, embedded_db: str, tiny: TinyPipelines
) -> None:
    session = embedded_session
    session.sql("CREATE STAGE AUDIO").collect()
    clips = {
        "a/0.wav": wav_bytes(0),
        "a/1.flac": _flac(1, 0.4),
        "b/2.wav": wav_bytes(2, seconds=0.3, channels=2),
        "b/3.flac": _flac(3, 0.7),
        "b/broken.wav": b"RIFF\x00\x00\x00\x00WAVEnot audio",
    }
    for path, data in clips.items():
        session._conn.client.upload_stage_file(session._conn.database, "PUBLIC", "AUDIO", path, data)
    paths = [f"@{embedded_db}.PUBLIC.AUDIO/{p}" for p in clips] + ["@AUDIO/b/missing.wav"]
    pipe = tiny.speech_recognition()
    mv = Registry(session).log_model(pipe, model_name="ASR")
    job = mv.run_batch(
        session.create_dataframe([(i, p) for i, p in enumerate(paths)], schema=["id", "audio"]),
        compute_pool=POOL,
        input_spec=InputSpec(
            column_handling={
                "AUDIO": {"input_format": InputFormat.FULL_STAGE_PATH, "convert_to": FileEncoding.RAW_BYTES}
            }
        ),
        output_spec=OutputSpec(stage_location="@DATA/asr/"),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    assert (job.info.rows_done, job.info.rows_failed) == (6, 2)
    out = session.read.option("pattern", ".*part-.*").parquet("@DATA/asr/").to_pandas().sort_values("ID")
    assert out["ID"].tolist() == [0, 1, 2, 3]
    assert out["AUDIO"].tolist() == paths[:4]
    expected = [pipe(_decoded(data)) for data in list(clips.values())[:4]]
    assert [json.loads(v) for v in out["outputs"]] == expected
    errors = session.read.parquet("@DATA/asr/_errors/").to_pandas().sort_values("ID")
    assert errors["ID"].tolist() == [4, 5]
    assert errors["ERROR_CODE"].tolist() == ["MODEL_ERROR", "FILE_NOT_FOUND"]
    assert (
        errors["ERROR_MESSAGE"].tolist()[1]
        == f"File @{embedded_db}.PUBLIC.AUDIO/b/missing.wav does not exist."
    )
