"""kgreason.train: the training phases (kgreason/phases.py) and what they share.

    sft.run_sft / train_lora LoRA fine-tuning on prompt-completion conversations (TRL SFTTrainer)
    rsft.run_rsft            expert iteration: sample k, score with the KG reward, keep winners, fine-tune
    rsft.select_winners      the selection rule (correct, well formed, best N, optional faithful/frontier)
    grpo.run_grpo            GRPO with the KG reward as a Python reward function (TRL GRPOTrainer)
    dpo.run_dpo              DPO on KG-verified pairs (TRL DPOTrainer)
    evaluation.evaluate_phase  held-out evaluation of one phase's model (via kgreason.evaluate)
    commands                 `kgreason train <phase>`, one command per phase of the table

Run folders are kgreason.runs; the main job (`kgreason run`) is kgreason.pipeline; the benchmarks
are kgreason.bench. Modules import torch lazily where they can; `.commands` never does.
"""
