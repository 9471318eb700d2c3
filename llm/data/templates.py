"""Prompt templates: how a problem's question becomes the prompt, and its worked solution the SFT target.

A template is a pair of pure string functions: ``prompt(question)`` and ``target(problem)`` (the completion a
supervised warm start teaches; the reward only reads the final answer of whatever the policy writes).

- ``plain``: ``"{question}\n"``; target = the worked solution as stored (``... #### n``). The CPU default: a
  model trained from scratch on it learns to end with ``#### n``, which the reward reads.
- ``boxed``: the question and a plain-text request for ``\boxed{}``; target = the solution with its ``#### n``
  line rewritten as ``The answer is $\boxed{n}$.`` (the MATH answer convention).
- ``qwen_boxed``: the ChatML prompt Qwen2.5-Math is evaluated with in the AEnt paper (system instruction:
  reason step by step, final answer in ``\boxed{}``). With a tokenizer that has a chat template, the messages go
  through ``tokenizer.apply_chat_template`` instead (for Qwen tokenizers the text is the same). Rows that are already
  chat messages (verl, TRL) are rendered from their own messages with the chat template (:func:`format_prompt`).
- ``r1_think``: the DeepSeek-R1-Distill format (user turn with the boxed instruction, assistant turn opened with
  ``<think>``), the second model family of the AEnt paper; written out literally.

The strings of ``plain``, ``qwen_boxed`` and ``r1_think`` are identical to the trainer's (``llm.policy``), so a
model is evaluated with exactly the prompt it was trained on.

:func:`format_prompt` applies a template by name; :func:`format_target` gives the SFT target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm.data.problem import Problem

__all__ = ["TEMPLATES", "Template", "format_prompt", "format_prompts", "format_target"]

_BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
_HASH_LINE = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def _solution_or_answer(problem: Problem) -> str:
    return problem.solution if problem.solution else f"#### {problem.answer}"


def _hash_to_boxed(problem: Problem) -> str:
    """The worked solution with a final ``#### x`` rewritten as ``The answer is \\boxed{x}.``"""
    text = _solution_or_answer(problem)
    if "\\boxed" in text:
        return text
    m = _HASH_LINE.search(text)
    if m is None:
        return f"{text}\nThe answer is $\\boxed{{{problem.answer}}}$."
    return f"{text[: m.start()].rstrip()}\nThe answer is $\\boxed{{{m.group(1)}}}$."


@dataclass(frozen=True)
class Template:
    """A prompt template.

    Attributes:
        name: key in :data:`TEMPLATES`.
        prompt: question -> prompt text (used when no chat template applies).
        target: problem -> supervised completion (worked solution in the answer format this template asks for).
        system: system message for chat-template tokenizers ("" = this template never uses a chat template).
    """

    name: str
    prompt: Callable[[str], str]
    target: Callable[[Problem], str]
    system: str = ""


TEMPLATES: dict[str, Template] = {
    "plain": Template("plain", lambda q: f"{q}\n", _solution_or_answer),
    "boxed": Template("boxed", lambda q: f"{q}\n{_BOXED_INSTRUCTION}\n", _hash_to_boxed),
    "qwen_boxed": Template(
        "qwen_boxed",
        lambda q: (
            f"<|im_start|>system\n{_BOXED_INSTRUCTION}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
            "<|im_start|>assistant\n"
        ),
        _hash_to_boxed,
        system=_BOXED_INSTRUCTION,
    ),
    "r1_think": Template(
        "r1_think",
        lambda q: f"<\uff5cbegin\u2581of\u2581sentence\uff5c><\uff5cUser\uff5c>{q}\n{_BOXED_INSTRUCTION}"
        "<\uff5cAssistant\uff5c><think>\n",
        lambda p: f"{_solution_or_answer(p).rsplit('####', 1)[0].rstrip()}\n</think>\n"
        f"The answer is $\\boxed{{{p.answer}}}$.",
    ),
}
"""Template name -> :class:`Template`."""


def _get(name: str) -> Template:
    if name not in TEMPLATES:
        raise ValueError(f"unknown prompt template {name!r}; known templates: {sorted(TEMPLATES)}")
    return TEMPLATES[name]


def format_prompt(question: str | Problem, template: str = "plain", tokenizer=None) -> str:
    """The prompt text for one question.

    Args:
        question: the question text, or a :class:`Problem`.
        template: a key of :data:`TEMPLATES`.
        tokenizer: when given, has a ``chat_template`` and the template has a system message, the prompt is
            ``tokenizer.apply_chat_template([system, user], add_generation_prompt=True)``.

    A problem read from chat-message rows (verl, TRL conversational; ``problem.meta["messages"]``) is rendered
    from its own messages with the tokenizer's chat template, whatever the template; without a chat template
    its question (the system and user turns' text) goes through the template like any other.

    Returns:
        The prompt string (the completion is generated right after it).
    """
    t = _get(template)
    q = question.question if isinstance(question, Problem) else str(question)
    messages = question.meta.get("messages") if isinstance(question, Problem) else None
    has_chat = tokenizer is not None and getattr(tokenizer, "chat_template", None)
    if messages and has_chat:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    if t.system and has_chat:
        messages = [{"role": "system", "content": t.system}, {"role": "user", "content": q}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return t.prompt(q)


def format_prompts(problems: Sequence[Problem], template: str = "plain", tokenizer=None) -> list[str]:
    """:func:`format_prompt` for each problem."""
    return [format_prompt(p, template, tokenizer) for p in problems]


def format_target(problem: Problem, template: str = "plain") -> str:
    """The supervised completion for a problem under a template (no EOS; the caller appends it)."""
    return _get(template).target(problem)
