"""Inference engines a runtime can serve a model's function with, besides the model's own handler.

``inference_engine_options={"engine": InferenceEngine.VLLM, ...}`` selects vLLM
(``runbatch.runtime.engines.vllm``) for OpenAI chat models; without it a function runs in its
model handler (for transformers pipelines: the transformers engine, on CPU or GPU).
"""
