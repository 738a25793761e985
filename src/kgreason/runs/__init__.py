"""kgreason.runs: the run folder, the record every stage writes into and the demo reads.

    folder.Run      config.json, summary.json, metrics.jsonl, episodes.jsonl, adapters/, eval/
    listing         `kgreason runs list`: one entry per run folder, newest first

Torch-free: the trainers, evaluations, experiments, exports and the demo all open run folders here.
"""
