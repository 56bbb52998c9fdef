"""huggingface.TransformersPipeline: a pipeline logged by reference, from a directory or the HF cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbatch.ml.model.models import huggingface
from runbatch.ml.model.openai_signatures import OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
from runbatch.packager.package import load_model, save_model
from tests.hf_models import TinyPipelines, shared_pipelines


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyPipelines:
    return shared_pipelines(tmp_path_factory)


def test_a_model_directory_is_logged_like_the_pipeline_built_from_it(
    tiny: TinyPipelines, tmp_path: Path
) -> None:
    folder = Path(tiny.chat().model.name_or_path)
    ref = huggingface.TransformersPipeline(task="text-generation", model=str(folder))
    assert (ref.task, ref.repo_snapshot_dir, ref.has_chat_template) == ("text-generation", str(folder), True)
    meta = save_model(ref, tmp_path / "v", name="CHAT")
    assert meta.model_type == "huggingface_pipeline"
    assert meta.signatures == {"__call__": OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC}
    assert meta.models["CHAT"].options["task"] == "text-generation"
    assert meta.models["CHAT"].options["model"] == str(folder)
    loaded, _ = load_model(tmp_path / "v")
    turns = [{"role": "user", "content": "hello how are you"}]
    expected = tiny.chat()(turns, max_new_tokens=3, do_sample=False)
    assert loaded(turns, max_new_tokens=3, do_sample=False) == expected


def test_a_vision_language_model_directory_is_logged_with_its_processor(
    tiny: TinyPipelines, tmp_path: Path
) -> None:
    import transformers

    folder = Path(tiny.vision_chat().model.name_or_path)
    ref = huggingface.TransformersPipeline(task="image-text-to-text", model=str(folder))
    assert ref.has_chat_template
    meta = save_model(ref, tmp_path / "v", name="VLM")
    assert meta.signatures == {"__call__": OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC}
    assert (meta.models["VLM"].options["task"], meta.models["VLM"].options["has_processor"]) == (
        "image-text-to-text",
        True,
    )
    loaded, _ = load_model(tmp_path / "v")
    assert isinstance(loaded.processor, transformers.LlavaProcessor)
    assert loaded.processor.chat_template == tiny.vision_chat().processor.chat_template


def test_a_hub_id_is_taken_from_the_cache_only(
    tiny: TinyPipelines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = cache / "models--tiny--gpt2-chat" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny.chat().model.name_or_path, snapshot)
    (cache / "models--tiny--gpt2-chat" / "refs").mkdir()
    (cache / "models--tiny--gpt2-chat" / "refs" / "main").write_text("0" * 40)
    ref = huggingface.TransformersPipeline(task="text-generation", model="tiny/gpt2-chat")
    assert ref.repo_snapshot_dir == str(snapshot)
    meta = save_model(ref, tmp_path / "v", name="CHAT")
    assert meta.models["CHAT"].options["model"] == "tiny/gpt2-chat"
    with pytest.raises(ValueError) as err:
        huggingface.TransformersPipeline(task="text-generation", model="tiny/absent")
    assert str(err.value) == (
        "Model 'tiny/absent' is neither a local directory nor in the Hugging Face cache (LocalEntryNotFoundError). "
        "runbatch does not download from the hub: run `huggingface-cli download tiny/absent` where the hub is "
        "reachable (or copy a cache, HF_HOME), or pass the model's directory."
    )
    with pytest.raises(RuntimeError, match="without a task being specified"):
        huggingface.TransformersPipeline(model="tiny/gpt2-chat")
