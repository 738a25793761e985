"""kgreason.pipeline: the main job, `kgreason run` (data -> base eval -> SFT -> eval -> a KG-reward
phase -> eval -> the table), built from the phase table (kgreason/phases.py).

    stages.run_pipeline   the stages in order, each resumable, each model stage in a process of its own
    commands              the `kgreason run` command (flags made from config.py's PipelineConfig)
"""
