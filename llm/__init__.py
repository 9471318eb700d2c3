"""LLM half of aent: a GRPO-style trainer with entropy control for math reasoning (transformers + accelerate)."""
