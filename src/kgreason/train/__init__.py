"""kgreason.train: run folders, SFT (TRL SFTTrainer), RSFT (ours), GRPO (TRL GRPOTrainer), `kgreason run`.

    runs.Run                 a run folder (config.json, metrics.jsonl, episodes.jsonl, adapters/, summary.json)
    sft.run_sft / train_lora LoRA fine-tuning on prompt-completion conversations
    rsft.run_rsft            expert iteration: sample k, score with the KG reward, keep winners, fine-tune
    rsft.select_winners      the selection rule (correct, well formed, best N, optional faithful/frontier)
    grpo.run_grpo            GRPO with the KG reward as a Python reward function
    evaluation.evaluate_phase  held-out evaluation of one phase's model (via kgreason.evaluate)
    pipeline.run_pipeline    the main job behind `kgreason run`

Modules import torch lazily where they can; `kgreason.train.runs` and `.commands` never do.
"""
