"""Problems, synthetic tasks, dataset loaders and prompt templates for the LLM trainer."""

from llm.data.loaders import (
    BENCHMARKS,
    DataError,
    default_data_dir,
    load_file,
    load_problems,
)
from llm.data.problem import Problem
from llm.data.rows import problem_from_row
from llm.data.synthetic import (
    TASK_ALIASES,
    TASKS,
    answer_only,
    generate_arithmetic,
    generate_countdown,
    make_task,
)
from llm.data.templates import TEMPLATES, Template, format_prompt, format_prompts, format_target

__all__ = [
    "BENCHMARKS",
    "TASKS",
    "TASK_ALIASES",
    "TEMPLATES",
    "DataError",
    "Problem",
    "Template",
    "answer_only",
    "default_data_dir",
    "format_prompt",
    "format_prompts",
    "format_target",
    "generate_arithmetic",
    "generate_countdown",
    "load_file",
    "load_problems",
    "make_task",
    "problem_from_row",
]
