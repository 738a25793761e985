"""kgreason.bench: `kgreason bench ...`, speed and memory as ratios against a baseline or this
machine's measured limit, in one run (never timed assertions).

    harness     the measured limit (matmul probes), kernel time split, child processes, parameter counts
    train       `bench train`: SFT throughput of TRL's stock path against kgreason's fast path
    sampler     `bench sampler`: decoding engines side by side (transformers, kgreason's, OpenVINO, ...)
    grpo        `bench grpo`: a GRPO step's parts
    eval_batch  `bench eval-batch`: evaluation answers and time across batch sizes
    commands    the flags and handlers of `kgreason bench`
"""
