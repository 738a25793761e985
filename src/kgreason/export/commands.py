"""`kgreason export hf` and `kgreason export lm-eval`: arguments and handlers."""

from __future__ import annotations

import argparse

from kgreason.argtypes import keep_epilog_lines
from kgreason.reward.presets import reward_preset_arg

HF_EXAMPLES = """examples:
  kgreason tasks generate --kg kg.json --out data
  kgreason export hf --tasks data --kg kg.json --out hf/kgreason-devops
  python -c "import datasets; print(datasets.load_dataset('hf/kgreason-devops'))"

  kgreason export hf --tasks runs/quick/data --out hf/quick     # kg.json inside the folder
"""

LM_EVAL_EXAMPLES = """examples:
  kgreason export lm-eval --tasks data --kg kg.json --out lm_eval_tasks
  lm_eval --model hf --model_args pretrained=HF_MODEL_FOLDER --include_path lm_eval_tasks \\
          --tasks kgreason --apply_chat_template        # or kgreason_hop4,kgreason_hop5

  kgreason export lm-eval --tasks data --kg kg.json --out tasks --split train_hard --name kg_hard
"""



def _common(p: argparse.ArgumentParser, examples: str) -> None:
    p.epilog = examples
    p.formatter_class = keep_epilog_lines(p.formatter_class)
    p.add_argument("--tasks", required=True, metavar="DIR",
                   help="a data folder written by `kgreason tasks generate` (manifest.json and the split files)")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the folder to write (created; files in it are replaced)")
    p.add_argument("--kg", default=None, metavar="FILE",
                   help="the graph the tasks were made from (default: kg.json inside --tasks)")


def add_hf_arguments(p: argparse.ArgumentParser) -> None:
    _common(p, HF_EXAMPLES)


def add_lm_eval_arguments(p: argparse.ArgumentParser) -> None:
    _common(p, LM_EVAL_EXAMPLES)
    p.add_argument("--split", default=None, help="the split to evaluate on (default: the first held-out split, eval)")
    p.add_argument("--name", default="kgreason", help="the group name; tasks are NAME_hop<k>")
    p.add_argument("--reward-preset", default="kgreason", type=reward_preset_arg,
                   help="reward preset process_results scores with (docs/reward.md)")
    p.add_argument("--max-gen-toks", type=int, default=256, help="generation cap per answer, in tokens")


def hf_command(args: argparse.Namespace) -> int:
    from kgreason.export.hf import export_hf
    from kgreason.export.rows import read_data_folder

    data = read_data_folder(args.tasks, args.kg)
    summary = export_hf(data, args.out)
    sizes = ", ".join(f"{name} {n}" for name, n in summary["sizes"].items())
    print(f"wrote {args.out}: {sizes}" + (" + facts" if summary["facts_file"] else "") + "; dataset card README.md")
    for name in data.held_out:
        audit = summary["audits"][name]
        worst = max(audit["shortcut_accuracy"].items(), key=lambda kv: kv[1], default=None)
        if worst is not None:
            print(f"  {name}: oracle {100 * audit['oracle_accuracy']:.1f}%, highest shortcut {worst[0]} "
                  f"{100 * worst[1]:.1f}% (chance {100 * audit['chance']:.2g}%, limit {100 * audit['max_shortcut']:.0f}%)")
    return 0


def lm_eval_command(args: argparse.Namespace) -> int:
    from kgreason.export.lm_eval import export_lm_eval
    from kgreason.export.rows import read_data_folder

    data = read_data_folder(args.tasks, args.kg)
    summary = export_lm_eval(data, args.out, split=args.split, name=args.name, preset=args.reward_preset,
                             max_gen_toks=args.max_gen_toks)
    tasks = ", ".join(f"{t} ({summary['counts'][t]})" for t in summary["tasks"])
    print(f"wrote {summary['folder']}: group {summary['group']} = {tasks} from split {summary['split']}")
    print(f"  lm_eval --model hf --model_args pretrained=MODEL --include_path {summary['folder']} "
          f"--tasks {summary['group']} --apply_chat_template")
    return 0


MODEL_EXAMPLES = """examples:
  kgreason export model --run runs/quick --out export/quick          # the last phase done (rsft after `make run`)
  python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('export/quick')"

  kgreason export model --run runs/quick --phase sft --out export/quick-sft --gguf
  llama-cli -m export/quick-sft/gguf/model-f16.gguf -no-cnv -f prompt.txt -n 256 --temp 0   # prompt: README
"""


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason.export.model import SAVE_DTYPES, TRAIN_PHASES  # torch-free at import time

    p.epilog = MODEL_EXAMPLES
    p.formatter_class = keep_epilog_lines(p.formatter_class)
    p.add_argument("--run", required=True, metavar="RUN", help="a run folder (config.json, summary.json, adapters/)")
    p.add_argument("--phase", default=None, choices=list(TRAIN_PHASES),
                   help="whose adapter to merge (default: the last training phase done, in the order sft, rsft, grpo)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the folder to write; an earlier export there is replaced, any other existing folder is refused")
    p.add_argument("--dtype", default="fp32", choices=list(SAVE_DTYPES),
                   help="weights dtype of the saved folder (the merge itself is always done in fp32)")
    p.add_argument("--gguf", action="store_true", help="also write DIR/gguf/model-<type>.gguf for llama.cpp")
    p.add_argument("--gguf-type", default="f16", choices=["f16", "f32"],
                   help="GGUF weight type (norms stay f32); quantise further with llama.cpp's llama-quantize")


def model_command(args: argparse.Namespace) -> int:
    from kgreason.export.model import export_model

    summary = export_model(args.run, args.out, phase=args.phase, dtype=args.dtype,
                           gguf_type=args.gguf_type if args.gguf else None)
    print(f"wrote {summary['folder']}: {summary['phase']} adapter merged into {summary['base']} "
          f"({summary['parameters']:,} parameters, {summary['dtype']})")
    if summary["gguf"]:
        g = summary["gguf"]
        print(f"  GGUF {summary['folder']}/gguf/{g['file']} ({g['type']}, {g['bytes'] / 2**20:.1f} MiB, "
              f"pre-tokenizer {g['pre_tokenizer']})")
    return 0
