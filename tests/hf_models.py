"""Tiny Hugging Face pipelines built offline from configs with random weights.

Every factory saves a model (with its tokenizer or processor) to a folder and builds
``transformers.pipeline(task, model=folder)`` from it, as a user with a downloaded model would.
Tokenizers are trained here on a small corpus, so nothing is ever fetched from the hub.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "VISION_CHAT_TEMPLATE",
    "TinyPipelines",
    "assert_same",
    "png_bytes",
    "shared_pipelines",
    "wav_bytes",
]

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "paris is the capital of france and berlin is the capital of germany",
    "alice works at acme in london and bob lives in new york",
    "the movie was great and the food was terrible",
    "i love this product it is wonderful",
    "what is the capital of france",
    "who works at acme",
    "this example is about sports politics or cooking",
    "the cat sat on the mat with a hat",
    "translate english to french hello world good morning",
    "summarize the long document about trains and boats",
    "how many stars does the repository have",
    "transformers datasets tokenizers pytorch python",
    "hello how are you today i am fine thank you",
    "system user assistant you are a helpful bot",
    "complete the sentence once upon a time there was a king",
    "numbers 1 2 3 4 5 6 7 8 9 10 100 1000 36542 4512 3934",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# A chat template for a vision-language model: each image part becomes the processor's image
# token (expanded by the processor to one token per image patch), text parts their text.
VISION_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
_SMALL_BERT = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 512,
}


def _corpus_lines() -> list[str]:
    return CORPUS + [line.capitalize() + "." for line in CORPUS] + [line.upper() for line in CORPUS]


def png_bytes(seed: int, size: int = 24) -> bytes:
    """A small random RGB PNG."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(seed: int, seconds: float = 0.5, rate: int = 16_000, channels: int = 1) -> bytes:
    """A short random 16-bit PCM WAV."""
    import soundfile

    samples = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(int(seconds * rate), channels))
    buf = io.BytesIO()
    soundfile.write(buf, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class TinyPipelines:
    """Builds each tiny pipeline once, on first use, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- tokenizers ------------------------------------------------------------------------------

    def wordpiece_vocab(self) -> Path:
        """A WordPiece vocab.txt trained on the corpus (BERT special tokens first)."""

        def build() -> Path:
            # Built rather than trained: WordPiece training breaks ties arbitrarily, and the
            # models built on this vocab should be the same in every run.
            special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            chars = sorted(set("".join(CORPUS)) - {" "} | set(".,?!'-"))
            words = sorted({w for line in CORPUS for w in line.split()} - set(chars))
            vocab = special + chars + [f"##{c}" for c in chars] + words
            path = self._dir("wordpiece") / "vocab.txt"
            path.write_text("".join(f"{w}\n" for w in vocab))
            return path

        return self._once("wordpiece", build)  # type: ignore[no-any-return]

    def bert_tokenizer(self) -> Any:
        from transformers import BertTokenizerFast

        return BertTokenizerFast(vocab_file=str(self.wordpiece_vocab()), do_lower_case=True)

    def _bpe(self, special: list[str]) -> Any:
        from tokenizers import ByteLevelBPETokenizer

        tok = ByteLevelBPETokenizer()
        tok.train_from_iterator(
            _corpus_lines(), vocab_size=400, min_frequency=1, special_tokens=special, show_progress=False
        )
        return tok

    def gpt2_tokenizer(self, chat: bool) -> Any:
        from transformers import GPT2TokenizerFast

        tok = GPT2TokenizerFast(tokenizer_object=self._bpe(["<|endoftext|>"])._tokenizer)
        tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"
        if chat:
            tok.chat_template = CHAT_TEMPLATE
        return tok

    def bart_tokenizer(self) -> Any:
        from transformers import BartTokenizerFast

        bpe = self._bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        from tokenizers.processors import RobertaProcessing

        bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
        return BartTokenizerFast(
            tokenizer_object=bpe._tokenizer,
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        )

    # -- pipelines -------------------------------------------------------------------------------

    def _bert(self, head: str, name: str, **config: Any) -> Any:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(0)
            cfg = transformers.BertConfig(
                vocab_size=self.bert_tokenizer().vocab_size, **_SMALL_BERT, **config
            )
            model = getattr(transformers, head)(cfg).eval()
            folder = self._dir(name)
            model.save_pretrained(folder)
            self.bert_tokenizer().save_pretrained(folder)
            return folder

        return self._once(f"model:{name}", build)

    def _pipe(self, key: str, folder: Path, task: str, **kwargs: Any) -> Any:
        import transformers

        return self._once(key, lambda: transformers.pipeline(task, model=str(folder), device="cpu", **kwargs))

    def fill_mask(self) -> Any:
        return self._pipe("fill-mask", self._bert("BertForMaskedLM", "bert-mlm"), "fill-mask", top_k=3)

    def token_classification(self) -> Any:
        labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
        folder = self._bert(
            "BertForTokenClassification",
            "bert-ner",
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
        return self._pipe("ner", folder, "ner")

    def question_answering(self, top_k: int | None = None) -> Any:
        folder = self._bert("BertForQuestionAnswering", "bert-qa")
        extra = {} if top_k is None else {"top_k": top_k}
        return self._pipe(f"qa:{top_k}", folder, "question-answering", **extra)

    def text_classification(self, top_k: int | None = None) -> Any:
        labels = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
        folder = self._bert(
            "BertForSequenceClassification",
            "bert-cls",
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
        extra = {} if top_k is None else {"top_k": top_k}
        return self._pipe(f"cls:{top_k}", folder, "text-classification", **extra)

    def zero_shot_classification(self) -> Any:
        folder = self._bert(
            "BertForSequenceClassification",
            "bert-nli",
            id2label=_NLI_LABELS,
            label2id={v: k for k, v in _NLI_LABELS.items()},
        )
        return self._pipe("zero-shot", folder, "zero-shot-classification")

    def feature_extraction(self) -> Any:
        return self._pipe("features", self._bert("BertModel", "bert-base"), "feature-extraction")

    def _gpt2(self, chat: bool) -> Path:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(1)
            tok = self.gpt2_tokenizer(chat)
            cfg = transformers.GPT2Config(
                vocab_size=tok.vocab_size,
                n_positions=128,
                n_embd=16,
                n_layer=1,
                n_head=2,
                bos_token_id=tok.eos_token_id,
                eos_token_id=tok.eos_token_id,
            )
            model = transformers.GPT2LMHeadModel(cfg).eval()
            folder = self._dir("gpt2-chat" if chat else "gpt2")
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            return folder

        return self._once(f"model:gpt2:{chat}", build)  # type: ignore[no-any-return]

    def text_generation(self) -> Any:
        return self._pipe(
            "textgen", self._gpt2(chat=False), "text-generation", max_new_tokens=6, do_sample=False
        )

    def chat(self) -> Any:
        return self._pipe("chat", self._gpt2(chat=True), "text-generation")

    def vision_chat(self) -> Any:
        """A tiny LLaVA (CLIP vision tower, Llama text model) for ``image-text-to-text`` chat.

        Its processor is assembled here: the corpus BPE tokenizer with an ``<image>`` token, and a
        CLIP image processor resizing to 16x16, which the 8-pixel patches cut into 4 image tokens.
        """
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(6)
            tok = self.gpt2_tokenizer(chat=False)
            tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
            image_token_id = tok.convert_tokens_to_ids("<image>")
            image_processor = transformers.CLIPImageProcessor(
                size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
            )
            processor = transformers.LlavaProcessor(
                image_processor=image_processor,
                tokenizer=tok,
                patch_size=8,
                vision_feature_select_strategy="default",
                chat_template=VISION_CHAT_TEMPLATE,
                image_token="<image>",
                num_additional_image_tokens=1,
            )
            vision = transformers.CLIPVisionConfig(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=16,
                patch_size=8,
                projection_dim=16,
            )
            text = transformers.LlamaConfig(
                vocab_size=len(tok),
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=64,
                bos_token_id=tok.eos_token_id,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.eos_token_id,
            )
            cfg = transformers.LlavaConfig(
                vision_config=vision,
                text_config=text,
                image_token_index=image_token_id,
                vision_feature_select_strategy="default",
                vision_feature_layer=-1,
                projector_hidden_act="gelu",
            )
            model = transformers.LlavaForConditionalGeneration(cfg).eval()
            model.generation_config.pad_token_id = tok.eos_token_id
            model.generation_config.eos_token_id = tok.eos_token_id
            folder = self._dir("llava")
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
            return folder

        folder = self._once("model:llava", build)
        return self._pipe("vision-chat", folder, "image-text-to-text")

    def _bart(self) -> Path:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(2)
            tok = self.bart_tokenizer()
            cfg = transformers.BartConfig(
                vocab_size=len(tok),
                d_model=16,
                encoder_layers=1,
                decoder_layers=1,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                encoder_ffn_dim=32,
                decoder_ffn_dim=32,
                max_position_embeddings=128,
                pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
                decoder_start_token_id=tok.eos_token_id,
                forced_eos_token_id=tok.eos_token_id,
            )
            model = transformers.BartForConditionalGeneration(cfg).eval()
            folder = self._dir("bart")
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            return folder

        return self._once("model:bart", build)  # type: ignore[no-any-return]

    def summarization(self) -> Any:
        return self._pipe("summarization", self._bart(), "summarization", max_new_tokens=6, min_length=0)

    def text2text_generation(self) -> Any:
        return self._pipe("text2text", self._bart(), "text2text-generation", max_new_tokens=6)

    def translation(self) -> Any:
        return self._pipe("translation", self._bart(), "translation_en_to_fr", max_new_tokens=6)

    def table_question_answering(self) -> Any:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(3)
            tok = transformers.TapasTokenizer(vocab_file=str(self.wordpiece_vocab()))
            cfg = transformers.TapasConfig(
                vocab_size=tok.vocab_size,
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
                max_position_embeddings=512,
                num_aggregation_labels=4,
                aggregation_labels={0: "NONE", 1: "SUM", 2: "AVERAGE", 3: "COUNT"},
                use_answer_as_supervision=True,
            )
            model = transformers.TapasForQuestionAnswering(cfg).eval()
            folder = self._dir("tapas")
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            return folder

        folder = self._once("model:tapas", build)
        return self._pipe("tqa", folder, "table-question-answering")

    def image_classification(self) -> Any:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(4)
            labels = {0: "cat", 1: "dog", 2: "bird"}
            cfg = transformers.ViTConfig(
                image_size=16,
                patch_size=8,
                num_channels=3,
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
                id2label=labels,
                label2id={v: k for k, v in labels.items()},
            )
            model = transformers.ViTForImageClassification(cfg).eval()
            processor = transformers.ViTImageProcessor(size={"height": 16, "width": 16})
            folder = self._dir("vit")
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
            return folder

        folder = self._once("model:vit", build)
        return self._pipe("image-cls", folder, "image-classification")

    def speech_recognition(self) -> Any:
        import torch
        import transformers

        def build() -> Path:
            torch.manual_seed(5)
            folder = self._dir("wav2vec2")
            chars = list("abcdefghijklmnopqrstuvwxyz'")
            vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
            vocab.update({c: i + 5 for i, c in enumerate(chars)})
            (folder / "vocab.json").write_text(json.dumps(vocab))
            tok = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
            extractor = transformers.Wav2Vec2FeatureExtractor(
                feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True
            )
            cfg = transformers.Wav2Vec2Config(
                vocab_size=len(vocab),
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
                conv_dim=(16, 16),
                conv_stride=(5, 4),
                conv_kernel=(10, 4),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=2,
                pad_token_id=0,
                do_stable_layer_norm=True,
                feat_extract_norm="layer",
            )
            model = transformers.Wav2Vec2ForCTC(cfg).eval()
            model.save_pretrained(folder)
            transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tok).save_pretrained(folder)
            return folder

        folder = self._once("model:wav2vec2", build)
        return self._pipe("asr", folder, "automatic-speech-recognition")


_SHARED: dict[str, TinyPipelines] = {}


def shared_pipelines(tmp_path_factory: Any) -> TinyPipelines:
    """One TinyPipelines per test process, whichever test module asks first."""
    if "tiny" not in _SHARED:
        _SHARED["tiny"] = TinyPipelines(tmp_path_factory.mktemp("hf-models"))
    return _SHARED["tiny"]


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal value by value; floats to float32 precision (scores come out of float32 models)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not a dict"
        assert sorted(actual) == sorted(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list | tuple | np.ndarray):
        assert isinstance(actual, list | tuple | np.ndarray), f"{path}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float | np.floating) and not isinstance(expected, bool):
        assert np.isclose(actual, expected, rtol=1e-6, atol=1e-7), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
