"""A recorded fake of vLLM's offline API, for testing runbatch's vLLM engine without a GPU.

The names, fields and defaults used by ``runbatch.runtime.engines.vllm`` are pinned to vLLM's
own (``vllm/entrypoints/llm.py``: ``LLM.__init__(model, *, tensor_parallel_size=1, ...,
**kwargs)``, ``LLM.chat(messages, sampling_params=None, use_tqdm=True, ...)``,
``LLM.get_tokenizer()``, ``LLM.llm_engine.model_config.max_model_len``;
``vllm/sampling_params.py``: ``SamplingParams(n, presence_penalty, frequency_penalty,
temperature, top_p, stop, max_tokens, ...)``; ``vllm/outputs.py``: ``RequestOutput(request_id,
prompt, prompt_token_ids, prompt_logprobs, outputs, finished)`` and ``CompletionOutput(index,
text, token_ids, cumulative_logprob, logprobs, finish_reason, stop_reason)``).

Behind that interface the fake generates for real with the transformers model in the folder it
is given (greedy when temperature is 0), applying the tokenizer's chat template as vLLM does,
so completions can be compared with the transformers engine's. It refuses what vLLM refuses
(a prompt longer than max_model_len, an image URL it cannot decode, keyword arguments vLLM's
``chat`` does not have) and records every call.
"""

from __future__ import annotations

import base64
import io
import itertools
from dataclasses import dataclass, field
from typing import Any

_IDS = itertools.count()


@dataclass
class SamplingParams:
    n: int = 1
    best_of: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    seed: int | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = 16


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: Any
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool


@dataclass
class _ModelConfig:
    max_model_len: int


@dataclass
class _Engine:
    model_config: _ModelConfig


@dataclass
class Recorder:
    """What the engine asked of vLLM: constructions, chat calls and the media they carried."""

    inits: list[dict[str, Any]] = field(default_factory=list)
    chats: list[tuple[list[list[dict[str, Any]]], list[SamplingParams]]] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    audio: list[tuple[bytes, str]] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)


RECORD = Recorder()


def _decode_data_url(url: str) -> bytes:
    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError(f"Invalid image URL (vLLM fetches http(s) and data URLs only): {url[:60]!r}")
    return base64.b64decode(url.split(";base64,", 1)[1])


class LLM:
    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        trust_remote_code: bool = False,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        seed: int | None = None,
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool = False,
        **kwargs: Any,
    ) -> None:
        import transformers

        RECORD.inits.append(
            {
                "model": model,
                "tensor_parallel_size": tensor_parallel_size,
                "gpu_memory_utilization": gpu_memory_utilization,
                "enforce_eager": enforce_eager,
                **kwargs,
            }
        )
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer or model)
        self._model = transformers.AutoModelForCausalLM.from_pretrained(model).eval()
        context = int(kwargs.get("max_model_len") or self._model.config.max_position_embeddings)
        self.llm_engine = _Engine(_ModelConfig(max_model_len=context))

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def _turns(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        """OpenAI content parts as vLLM's "string" content format renders them: text parts joined by
        newlines; media parts decoded (and recorded), leaving no text for a text-only model."""
        turns = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, list):
                turns.append({"role": message["role"], "content": content or ""})
                continue
            texts = []
            for part in content:
                kind = part["type"]
                if kind == "text":
                    texts.append(part["text"])
                elif kind == "image_url":
                    from PIL import Image

                    data = _decode_data_url(part["image_url"]["url"])
                    Image.open(io.BytesIO(data)).load()
                    RECORD.images.append(data)
                elif kind == "input_audio":
                    audio = part["input_audio"]
                    RECORD.audio.append((base64.b64decode(audio["data"]), audio["format"]))
                elif kind == "video_url":
                    _decode_data_url(part["video_url"]["url"])
                    RECORD.videos.append(part["video_url"]["url"])
                else:
                    raise ValueError(f"Unknown part type: {kind}")
            turns.append({"role": message["role"], "content": "\n".join(texts)})
        return turns

    def chat(
        self,
        messages: list[dict[str, Any]] | list[list[dict[str, Any]]],
        sampling_params: SamplingParams | list[SamplingParams] | None = None,
        use_tqdm: bool = True,
        lora_request: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        import torch

        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        params = (
            sampling_params if isinstance(sampling_params, list) else [sampling_params or SamplingParams()]
        )
        if len(params) == 1:
            params = params * len(conversations)
        if len(params) != len(conversations):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        RECORD.chats.append((conversations, params))  # type: ignore[arg-type]
        prompts = []
        for conversation in conversations:
            ids = self._tokenizer.apply_chat_template(
                self._turns(conversation), add_generation_prompt=add_generation_prompt, tokenize=True
            )
            if len(ids) > self.llm_engine.model_config.max_model_len:
                raise ValueError(
                    f"The decoder prompt (length {len(ids)}) is longer than the maximum model length of "
                    f"{self.llm_engine.model_config.max_model_len}. Make sure that `max_model_len` is no smaller "
                    "than the number of text tokens plus multimodal tokens."
                )
            prompts.append(ids)
        results = []
        for ids, sp in zip(prompts, params, strict=True):
            if sp.temperature != 0.0:
                raise NotImplementedError("the fake generates greedily only (temperature=0)")
            room = self.llm_engine.model_config.max_model_len - len(ids)
            limit = min(sp.max_tokens or 16, room)
            out = self._model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=limit,
                do_sample=False,
                pad_token_id=self._tokenizer.eos_token_id,
            )
            generated = out[0][len(ids) :].tolist()
            finish = "stop" if generated and generated[-1] == self._tokenizer.eos_token_id else "length"
            text = self._tokenizer.decode(generated, skip_special_tokens=True)
            results.append(
                RequestOutput(
                    request_id=str(next(_IDS)),
                    prompt=None,
                    prompt_token_ids=list(ids),
                    prompt_logprobs=None,
                    outputs=[CompletionOutput(0, text, generated, None, None, finish_reason=finish)],
                    finished=True,
                )
            )
        return results
