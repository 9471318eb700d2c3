"""The run's final weights: ``output_dir/final``, written with ``save_pretrained`` once training ends (the
LoRA-merged copy, ``final_merged``, is :func:`llm.lora.save_merged`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["save_final"]


def save_final(accelerator, model, tokenizer, out_dir: Path) -> None:
    """Write output_dir/final with save_pretrained (full weights even under FSDP / ZeRO-3), atomically."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the run's own progress bar the only one
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        tmp = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state)
        tokenizer.save_pretrained(tmp)
        old = out_dir.with_name(f".old-{out_dir.name}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
