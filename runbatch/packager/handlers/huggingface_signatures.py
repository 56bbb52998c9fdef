"""Signatures of Hugging Face pipelines by task.

Mirrors ``snowflake.ml.model._signatures.utils.huggingface_pipeline_signature_auto_infer``: the
same input, output and parameter names, types, shapes and defaults, so a model logged here serves
the columns it would in Snowflake. Chat models get the OpenAI signatures of
``runbatch.ml.model.openai_signatures``.
"""

from __future__ import annotations

from collections.abc import Callable
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
from runbatch.ml.model.openai_signatures import OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC

__all__ = [
    "GENERATION_PARAM_SPECS",
    "huggingface_pipeline_signature_auto_infer",
]

S, I64, F64, BOOL, BYTES = DataType.STRING, DataType.INT64, DataType.DOUBLE, DataType.BOOL, DataType.BYTES


def _p(name: str, dtype: DataType, default: Any = None, shape: tuple[int, ...] | None = None) -> ParamSpec:
    return ParamSpec(name=name, dtype=dtype, default_value=default, shape=shape)


def _f(name: str, dtype: DataType, shape: tuple[int, ...] | None = None) -> FeatureSpec:
    return FeatureSpec(name=name, dtype=dtype, shape=shape)


def _list_of(name: str, specs: list[BaseFeatureSpec]) -> FeatureGroupSpec:
    return FeatureGroupSpec(name=name, specs=specs, shape=(-1,))


# The keyword arguments of transformers' GenerationConfig, all unset by default.
GENERATION_PARAM_SPECS: list[BaseParamSpec] = [
    _p("max_length", I64),
    _p("max_new_tokens", I64),
    _p("min_length", I64),
    _p("min_new_tokens", I64),
    _p("early_stopping", S),
    _p("max_time", F64),
    _p("stop_strings", S, shape=(-1,)),
    _p("do_sample", BOOL),
    _p("num_beams", I64),
    _p("num_beam_groups", I64),
    _p("penalty_alpha", F64),
    _p("temperature", F64),
    _p("top_k", I64),
    _p("top_p", F64),
    _p("min_p", F64),
    _p("top_h", F64),
    _p("typical_p", F64),
    _p("epsilon_cutoff", F64),
    _p("eta_cutoff", F64),
    _p("diversity_penalty", F64),
    _p("repetition_penalty", F64),
    _p("encoder_repetition_penalty", F64),
    _p("length_penalty", F64),
    _p("no_repeat_ngram_size", I64),
    _p("bad_words_ids", I64, shape=(-1, -1)),
    _p("force_words_ids", I64, shape=(-1, -1)),
    _p("renormalize_logits", BOOL),
    _p("forced_bos_token_id", I64),
    _p("forced_eos_token_id", I64),
    _p("remove_invalid_values", BOOL),
    _p("token_healing", BOOL),
    _p("num_return_sequences", I64),
    _p("output_attentions", BOOL),
    _p("output_hidden_states", BOOL),
    _p("output_scores", BOOL),
    _p("output_logits", BOOL),
    _p("pad_token_id", I64),
    _p("bos_token_id", I64),
    _p("eos_token_id", I64),
    _p("encoder_no_repeat_ngram_size", I64),
    _p("decoder_start_token_id", I64),
    _p("is_assistant", BOOL),
    _p("num_assistant_tokens", I64),
    _p("num_assistant_tokens_schedule", S),
    _p("assistant_confidence_threshold", F64),
    _p("prompt_lookup_num_tokens", I64),
    _p("max_matching_ngram_size", I64),
    _p("assistant_early_exit", I64),
    _p("assistant_lookbehind", I64),
    _p("target_lookbehind", I64),
    _p("guidance_scale", F64),
    _p("low_memory", BOOL),
    _p("disable_compile", BOOL),
    _p("prefill_chunk_size", I64),
    _p("suppress_tokens", I64, shape=(-1,)),
    _p("begin_suppress_tokens", I64, shape=(-1,)),
    _p("forced_decoder_ids", I64, shape=(-1, -1)),
    _p("use_cache", BOOL),
    _p("cache_implementation", S),
    ParamGroupSpec(
        name="watermarking_config",
        specs=[
            _p("greenlist_ratio", F64),
            _p("bias", F64),
            _p("hashing_key", I64),
            _p("seeding_scheme", S),
            _p("context_width", I64),
        ],
    ),
]

# -- per task ------------------------------------------------------------------------------------

_LABEL_SCORE: list[BaseFeatureSpec] = [_f("label", S), _f("score", F64)]
_ANSWER_SPAN: list[BaseFeatureSpec] = [_f("score", F64), _f("start", I64), _f("end", I64), _f("answer", S)]
_BOX = FeatureGroupSpec(
    name="box", specs=[_f("xmin", I64), _f("ymin", I64), _f("xmax", I64), _f("ymax", I64)]
)
_TENSOR_TASKS = ("summarization", "text-generation", "text2text-generation")
_CHAT_TASKS = ("image-text-to-text", "video-text-to-text", "audio-text-to-text")


def _text_generation_like(
    input_name: str, output: BaseFeatureSpec, extra: list[BaseParamSpec]
) -> ModelSignature:
    return ModelSignature(
        inputs=[_f(input_name, S)], outputs=[output], params=[*extra, *GENERATION_PARAM_SPECS]
    )


def _fill_mask() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("inputs", S)],
        outputs=[
            _list_of("outputs", [_f("sequence", S), _f("score", F64), _f("token", I64), _f("token_str", S)])
        ],
        params=[_p("targets", S, shape=(-1,)), _p("top_k", I64)],
    )


def _token_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("inputs", S)],
        outputs=[
            _list_of(
                "outputs",
                [
                    _f("word", S),
                    _f("score", F64),
                    _f("entity", S),
                    _f("index", I64),
                    _f("start", I64),
                    _f("end", I64),
                ],
            )
        ],
    )


def _question_answering(params: dict[str, Any]) -> ModelSignature:
    qa_params: list[BaseParamSpec] = [
        _p("top_k", I64, 1),
        _p("doc_stride", I64, 128),
        _p("max_answer_len", I64, 15),
        _p("max_seq_len", I64, 384),
        _p("max_question_len", I64, 64),
        _p("handle_impossible_answer", BOOL, False),
        _p("align_to_words", BOOL, True),
    ]
    inputs = [_f("question", S), _f("context", S)]
    # One answer per question is a dict, which expands to columns; more are a list per row.
    if params.get("top_k", 1) == 1 and params.get("topk", 1) == 1:
        return ModelSignature(inputs=inputs, outputs=list(_ANSWER_SPAN), params=qa_params)
    return ModelSignature(inputs=inputs, outputs=[_list_of("answers", list(_ANSWER_SPAN))], params=qa_params)


def _summarization() -> ModelSignature:
    return _text_generation_like(
        "documents",
        _f("summary_text", S),
        [_p("clean_up_tokenization_spaces", BOOL), _p("truncation", S)],
    )


def _table_question_answering() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("query", S), _f("table", S)],
        outputs=[
            _f("answer", S),
            # Snowflake declares (-1,) and stores [[row, column], ...] in an ARRAY; a typed column
            # needs the real depth, so the shape here is (-1, 2).
            _f("coordinates", I64, shape=(-1, 2)),
            _f("cells", S, shape=(-1,)),
            _f("aggregator", S),
        ],
        params=[_p("sequential", BOOL, False), _p("padding", S), _p("truncation", S)],
    )


def _text_classification(params: dict[str, Any]) -> ModelSignature:
    cls_params: list[BaseParamSpec] = [_p("top_k", I64, 1), _p("function_to_apply", S)]
    if params.get("top_k") is not None:
        return ModelSignature(
            inputs=[_f("text", S)], outputs=[_list_of("labels", list(_LABEL_SCORE))], params=cls_params
        )
    return ModelSignature(inputs=[_f("text", S)], outputs=list(_LABEL_SCORE), params=cls_params)


def _image_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES)],
        outputs=[_list_of("labels", list(_LABEL_SCORE))],
        params=[_p("top_k", I64, 5), _p("function_to_apply", S), _p("timeout", F64)],
    )


def _speech_recognition() -> ModelSignature:
    chunks = _list_of("chunks", [_f("timestamp", F64, shape=(2,)), _f("text", S)])
    return ModelSignature(
        inputs=[_f("audio", BYTES)],
        outputs=[FeatureGroupSpec(name="outputs", specs=[_f("text", S), chunks])],
        params=[_p("return_timestamps", S), *GENERATION_PARAM_SPECS],
    )


def _video_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("video", BYTES)],
        outputs=[_list_of("labels", list(_LABEL_SCORE))],
        params=[
            _p("top_k", I64, 5),
            _p("num_frames", I64),
            _p("frame_sampling_rate", I64, 1),
            _p("function_to_apply", S, "softmax"),
        ],
    )


def _document_question_answering() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("image", BYTES), _f("question", S)], outputs=[_list_of("answers", list(_ANSWER_SPAN))]
    )


def _visual_question_answering() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("image", BYTES), _f("question", S)],
        outputs=[_list_of("answers", [_f("answer", S), _f("score", F64)])],
        params=[_p("top_k", I64, 5), _p("timeout", F64)],
    )


def _image_feature_extraction() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES)],
        outputs=[_f("feature_extraction", F64, shape=(-1,))],
        params=[_p("timeout", F64)],
    )


def _image_to_text() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES)],
        outputs=[_list_of("outputs", [_f("generated_text", S)])],
        params=list(GENERATION_PARAM_SPECS),
    )


def _object_detection() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES)],
        outputs=[_list_of("detections", [*_LABEL_SCORE, _BOX])],
        params=[_p("threshold", F64, 0.5), _p("timeout", F64)],
    )


def _zero_shot_image_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES), _f("candidate_labels", S, shape=(-1,))],
        outputs=[_list_of("labels", list(_LABEL_SCORE))],
        params=[_p("hypothesis_template", S, "This is a photo of {}."), _p("timeout", F64)],
    )


def _zero_shot_object_detection() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("images", BYTES), _f("candidate_labels", S, shape=(-1,))],
        outputs=[_list_of("detections", [*_LABEL_SCORE, _BOX])],
        params=[_p("threshold", F64, 0.1), _p("top_k", I64), _p("timeout", F64)],
    )


def _text_generation(has_chat_template: bool) -> ModelSignature:
    if has_chat_template:
        return OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
    return ModelSignature(
        inputs=[_f("inputs", S)],
        outputs=[_list_of("outputs", [_f("generated_text", S)])],
        params=list(GENERATION_PARAM_SPECS),
    )


def _text2text_generation() -> ModelSignature:
    return _text_generation_like(
        "inputs",
        _f("generated_text", S),
        [_p("clean_up_tokenization_spaces", BOOL), _p("truncation", S)],
    )


def _translation() -> ModelSignature:
    return _text_generation_like("inputs", _f("translation_text", S), [_p("src_lang", S), _p("tgt_lang", S)])


def _zero_shot_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("sequences", S), _f("candidate_labels", S, shape=(-1,))],
        outputs=[_f("sequence", S), _f("labels", S, shape=(-1,)), _f("scores", F64, shape=(-1,))],
        params=[_p("hypothesis_template", S, "This example is {}."), _p("multi_label", BOOL, False)],
    )


def _audio_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("audio", BYTES)],
        outputs=[_list_of("labels", list(_LABEL_SCORE))],
        params=[_p("top_k", I64), _p("function_to_apply", S, "softmax")],
    )


def _zero_shot_audio_classification() -> ModelSignature:
    return ModelSignature(
        inputs=[_f("audio", BYTES), _f("candidate_labels", S, shape=(-1,))],
        outputs=[_list_of("labels", list(_LABEL_SCORE))],
        params=[_p("hypothesis_template", S, "This is a sound of {}.")],
    )


_BY_TASK: dict[str, Callable[[], ModelSignature]] = {
    "fill-mask": _fill_mask,
    "ner": _token_classification,
    "token-classification": _token_classification,
    "summarization": _summarization,
    "table-question-answering": _table_question_answering,
    "image-classification": _image_classification,
    "automatic-speech-recognition": _speech_recognition,
    "video-classification": _video_classification,
    "document-question-answering": _document_question_answering,
    "visual-question-answering": _visual_question_answering,
    "image-feature-extraction": _image_feature_extraction,
    "image-to-text": _image_to_text,
    "object-detection": _object_detection,
    "zero-shot-image-classification": _zero_shot_image_classification,
    "zero-shot-object-detection": _zero_shot_object_detection,
    "text2text-generation": _text2text_generation,
    "zero-shot-classification": _zero_shot_classification,
    "audio-classification": _audio_classification,
    "zero-shot-audio-classification": _zero_shot_audio_classification,
}


def huggingface_pipeline_signature_auto_infer(
    task: str | None, params: dict[str, Any], has_chat_template: bool | None = True
) -> ModelSignature | None:
    """The signature Snowflake gives a pipeline of ``task`` built with ``params``; None when it has none."""
    if not task:
        return None
    if params.get("return_tensors", False) and (
        task in _TENSOR_TASKS or task in _CHAT_TASKS or task.startswith("translation")
    ):
        raise NotImplementedError(
            f"Auto deployment for HuggingFace pipeline {task} "
            "when `return_tensors` set to `True` has not been supported yet."
        )
    if task == "question-answering":
        return _question_answering(params)
    if task in ("text-classification", "sentiment-analysis"):
        return _text_classification(params)
    if task == "text-generation":
        return _text_generation(bool(has_chat_template))
    if task in _CHAT_TASKS:
        return OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
    if task.startswith("translation"):
        return _translation()
    build = _BY_TASK.get(task)
    return build() if build is not None else None
