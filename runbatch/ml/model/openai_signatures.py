"""The OpenAI chat signatures, as ``snowflake.ml.model.openai_signatures`` defines them.

Log a chat model with one of these (``signatures=openai_signatures.OPENAI_CHAT_SIGNATURE``) and it
takes a ``messages`` column of OpenAI chat messages and returns OpenAI chat completion columns.
"""

from __future__ import annotations

from typing import Any

from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    BaseParamSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamGroupSpec,
    ParamSpec,
)

__all__ = [
    "OPENAI_CHAT_SIGNATURE",
    "OPENAI_CHAT_SIGNATURE_SPEC",
    "OPENAI_CHAT_SIGNATURE_SPECS",
    "OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING",
    "OPENAI_CHAT_SIGNATURE_WITH_CONTENT_FORMAT_STRING",
    "OPENAI_CHAT_WITH_PARAMS_SIGNATURE",
    "OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC",
    "OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING",
    "OPENAI_CHAT_WITH_PARAMS_SIGNATURE_WITH_CONTENT_FORMAT_STRING",
]

S, I32, I64, F32, F64, BOOL = (
    DataType.STRING,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.BOOL,
)


def _p(name: str, dtype: DataType, default: Any = None, shape: tuple[int, ...] | None = None) -> ParamSpec:
    return ParamSpec(name=name, dtype=dtype, default_value=default, shape=shape)


def _f(name: str, dtype: DataType, shape: tuple[int, ...] | None = None) -> FeatureSpec:
    return FeatureSpec(name=name, dtype=dtype, shape=shape)


def _list_of(name: str, specs: list[BaseFeatureSpec]) -> FeatureGroupSpec:
    return FeatureGroupSpec(name=name, specs=specs, shape=(-1,))


def _content_parts() -> FeatureGroupSpec:
    return _list_of(
        "content",
        [
            _f("type", S),
            _f("text", S),
            FeatureGroupSpec(name="image_url", specs=[_f("url", S), _f("detail", S)]),
            FeatureGroupSpec(name="video_url", specs=[_f("url", S)]),
            FeatureGroupSpec(name="input_audio", specs=[_f("data", S), _f("format", S)]),
        ],
    )


def _messages(content_as_string: bool) -> FeatureGroupSpec:
    content: BaseFeatureSpec = _f("content", S) if content_as_string else _content_parts()
    return _list_of("messages", [content, _f("name", S), _f("role", S), _f("title", S)])


def _chat_outputs() -> list[BaseFeatureSpec]:
    return [
        _f("id", S),
        _f("object", S),
        _f("created", DataType.FLOAT),
        _f("model", S),
        _list_of(
            "choices",
            [
                _f("index", DataType.INT32),
                FeatureGroupSpec(name="message", specs=[_f("content", S), _f("name", S), _f("role", S)]),
                _f("logprobs", S),
                _f("finish_reason", S),
            ],
        ),
        FeatureGroupSpec(
            name="usage",
            specs=[
                _f("completion_tokens", DataType.INT32),
                _f("prompt_tokens", DataType.INT32),
                _f("total_tokens", DataType.INT32),
            ],
        ),
    ]


def _chat_knob_inputs() -> list[BaseFeatureSpec]:
    """The chat knobs as input columns, for the signatures without params."""
    return [
        _f("temperature", F64),
        _f("max_completion_tokens", I64),
        _f("stop", S, shape=(-1,)),
        _f("n", DataType.INT32),
        _f("stream", BOOL),
        _f("top_p", F64),
        _f("frequency_penalty", F64),
        _f("presence_penalty", F64),
        FeatureGroupSpec(
            name="response_format",
            specs=[
                _f("type", S),
                FeatureGroupSpec(
                    name="json_schema",
                    specs=[
                        _f("name", S),
                        _f("description", S),
                        _f("schema", DataType.OBJECT),
                        _f("strict", BOOL),
                    ],
                ),
            ],
        ),
    ]


def _chat_params() -> list[BaseParamSpec]:
    return [
        _p("temperature", F64, 1.0),
        _p("max_completion_tokens", I64, 250),
        _p("stop", S, [], shape=(-1,)),
        _p("n", DataType.INT32, 1),
        _p("stream", BOOL, False),
        _p("top_p", F64, 1.0),
        _p("frequency_penalty", F64, 0.0),
        _p("presence_penalty", F64, 0.0),
        ParamGroupSpec(
            name="response_format",
            specs=[
                _p("type", S, "json_schema"),
                ParamGroupSpec(
                    name="json_schema",
                    specs=[
                        _p("name", S, ""),
                        _p("description", S),
                        _p("schema", DataType.OBJECT),
                        _p("strict", BOOL),
                    ],
                ),
            ],
        ),
    ]


OPENAI_CHAT_SIGNATURE_SPEC = ModelSignature(
    inputs=[_messages(content_as_string=False), *_chat_knob_inputs()], outputs=_chat_outputs()
)
OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC = ModelSignature(
    inputs=[_messages(content_as_string=False)], outputs=_chat_outputs(), params=_chat_params()
)
OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING = ModelSignature(
    inputs=[_messages(content_as_string=True), *_chat_knob_inputs()], outputs=_chat_outputs()
)
OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING = ModelSignature(
    inputs=[_messages(content_as_string=True)], outputs=_chat_outputs(), params=_chat_params()
)
OPENAI_CHAT_SIGNATURE_SPECS = (
    OPENAI_CHAT_SIGNATURE_SPEC,
    OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING,
    OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC,
    OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING,
)
OPENAI_CHAT_SIGNATURE = {"__call__": OPENAI_CHAT_SIGNATURE_SPEC}
OPENAI_CHAT_WITH_PARAMS_SIGNATURE = {"__call__": OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC}
OPENAI_CHAT_SIGNATURE_WITH_CONTENT_FORMAT_STRING = {
    "__call__": OPENAI_CHAT_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING
}
OPENAI_CHAT_WITH_PARAMS_SIGNATURE_WITH_CONTENT_FORMAT_STRING = {
    "__call__": OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC_WITH_CONTENT_FORMAT_STRING
}
