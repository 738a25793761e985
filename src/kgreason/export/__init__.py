"""kgreason.export: a `tasks generate` data folder in the formats other tools read.

* `hf.py` — a Hugging Face datasets folder: one parquet shard per split, a `facts` config and a
  dataset card (seed, sizes, audit figures, license note); `datasets.load_dataset(FOLDER)`.
* `lm_eval.py` — an lm-evaluation-harness task folder: one `generate_until` task per hop count,
  a group, and a `utils.py` whose `process_results` scores with kgreason's reward.
* `rows.py` — reading a data folder and the row every format shares (with the self-contained
  reward label of `kgreason.reward.adapters`).

Never imports torch (`datasets` and pyarrow do the writing).
"""
