"""Choosing the allocator of the stage processes (kgreason/memory.py)."""

import os
import subprocess
import sys

import pytest

import kgreason.memory as memory


def test_auto_preloads_jemalloc_only_where_it_is_found(monkeypatch, tmp_path):
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setattr(memory, "find_jemalloc", lambda: str(lib))
    assert memory.allocator_environment("auto") == {"LD_PRELOAD": str(lib)}
    assert memory.allocator_environment("jemalloc") == {"LD_PRELOAD": str(lib)}
    assert memory.allocator_environment("system") == {}
    monkeypatch.setenv("LD_PRELOAD", "/x/libother.so")
    assert memory.allocator_environment("auto") == {"LD_PRELOAD": f"{lib}:/x/libother.so"}  # kept, not replaced
    monkeypatch.setenv("LD_PRELOAD", f"{lib}")
    assert memory.allocator_environment("auto") == {}  # already there
    monkeypatch.setattr(memory, "find_jemalloc", lambda: None)
    assert memory.allocator_environment("auto") == {}
    with pytest.raises(ValueError, match="libjemalloc2"):
        memory.allocator_environment("jemalloc")
    with pytest.raises(ValueError, match="expected one of"):
        memory.allocator_environment("tcmalloc")


def test_child_environment_restores_what_it_changed(monkeypatch):
    monkeypatch.setenv("KGREASON_T1", "before")
    monkeypatch.delenv("KGREASON_T2", raising=False)
    with memory.child_environment({"KGREASON_T1": "during", "KGREASON_T2": "new"}):
        assert os.environ["KGREASON_T1"] == "during" and os.environ["KGREASON_T2"] == "new"
    assert os.environ["KGREASON_T1"] == "before" and "KGREASON_T2" not in os.environ


def test_a_process_started_with_the_environment_runs_on_jemalloc():
    """Where jemalloc is installed (make setup installs Debian's libjemalloc2 where it can), the
    environment really loads it in a new process; without it, nothing is preloaded."""
    env = {**os.environ, **memory.allocator_environment("auto")}
    code = "import kgreason.memory as m; print(m.allocator_in_use())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("jemalloc" if memory.find_jemalloc() else "system")


def test_release_between_phases_hands_freed_pages_back_on_the_stage_allocator():
    """A stage process (jemalloc where installed, else glibc) holding ~300 MB of freed small blocks
    gets most of it back to the OS: jemalloc's purge, or glibc's malloc_trim."""
    env = {**os.environ, **memory.allocator_environment("auto")}
    code = (
        "import kgreason.memory as m\n"
        "def rss(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024\n"
        "blocks = [bytearray(3000) for _ in range(100_000)]\n"  # small blocks: kept in the heap when freed
        "still_used = bytearray(3000)\n"  # a live block above them: glibc cannot just shrink the heap's top
        "del blocks\n"
        "freed = rss()\n"
        "m.release_between_phases()\n"
        "print(m.allocator_in_use(), freed, rss())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    allocator, freed, released = out.split()
    assert allocator == ("jemalloc" if memory.find_jemalloc() else "system")
    assert int(freed) - int(released) > 150, f"{freed} MB resident after freeing, {released} MB after releasing"


# --- OpenVINO and jemalloc ---------------------------------------------------------------------------
# Measured here: with jemalloc preloaded, OpenVINO GenAI aborted the whole stage process as it loaded
# the model ("free(): invalid pointer"), and `kgreason run --eval-backend openvino` ended in a
# BrokenProcessPool traceback.


def test_a_stage_group_decoding_with_openvino_runs_on_the_system_allocator(capsys):
    from dataclasses import replace

    from kgreason.config import PipelineConfig
    from kgreason.io import InputError
    from kgreason.pipeline.stages import group_allocator, openvino_stages

    cfg = PipelineConfig()
    assert openvino_stages(cfg, ("base_eval", "sft", "sft_eval", "rsft", "rsft_eval")) == []
    assert group_allocator(cfg, ("sft_eval",)) == "auto"  # no OpenVINO: the configured allocator
    ov_eval = replace(cfg, eval=replace(cfg.eval, backend="openvino"))
    assert openvino_stages(ov_eval, ("base_eval", "sft", "sft_eval", "rsft", "rsft_eval")) == [
        "base_eval", "sft_eval", "rsft_eval"]
    assert group_allocator(ov_eval, ("sft",)) == "auto"  # training samples nothing
    assert group_allocator(ov_eval, ("sft_eval",)) == "system"
    assert "openvino backend cannot run under jemalloc" in capsys.readouterr().out
    ov_rsft = replace(cfg, rsft=replace(cfg.rsft, backend="openvino"))
    assert group_allocator(ov_rsft, ("rsft",)) == "system" and group_allocator(ov_rsft, ("rsft_eval",)) == "auto"
    assert group_allocator(replace(ov_rsft, allocator="system"), ("rsft",)) == "system"
    with pytest.raises(InputError, match=r"--allocator jemalloc with rsft: .*free\(\): invalid pointer"):
        group_allocator(replace(ov_rsft, allocator="jemalloc"), ("rsft",))


def test_the_openvino_sampler_refuses_to_start_under_jemalloc(monkeypatch):
    from kgreason.io import InputError
    from kgreason.sampling import openvino_backend

    monkeypatch.setattr(memory, "allocator_in_use", lambda: "jemalloc")
    with pytest.raises(InputError, match="--allocator system"):
        openvino_backend.OpenVINOSampler(model=None, tokenizer=None)


def test_a_stage_process_that_dies_ends_the_run_with_one_paragraph(monkeypatch, tmp_path, capsys):
    import concurrent.futures
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from kgreason.cli import main
    from kgreason.config import PipelineConfig
    from kgreason.io import RunFailed
    from kgreason.pipeline import stages
    from kgreason.runs.folder import Run

    class DeadPool:  # the pool a killed child leaves: every future fails with BrokenProcessPool
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> bool:
            return False

        def submit(self, *args, **kwargs) -> Future:
            future: Future = Future()
            future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
            return future

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", DeadPool)
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": "tiny:random"})
    with pytest.raises(RunFailed, match=r"the process of the sft stage died .* rerun the same command to resume"):
        stages.run_model_stages(run, PipelineConfig(model="tiny:random"), ("sft",))

    def dies(*args, **kwargs):
        raise RunFailed("the process of the sft stage died before it finished")

    monkeypatch.setattr(stages, "run_pipeline", dies)
    assert main(["run", "--model", "tiny:random", "--run-dir", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "kgreason: error: the process of the sft stage died before it finished"


def test_a_stage_child_ends_when_its_parent_is_killed(tmp_path):
    """`end_with_parent`, as each stage's child calls it first: a parent that dies without cleaning
    up (SIGKILL, `pkill` of `kgreason run`) takes its child along instead of leaving it running."""
    import time

    code = (
        "import multiprocessing as mp, os, time\n"
        "from kgreason.pipeline.stages import end_with_parent\n"
        "def child(parent):\n"
        "    end_with_parent(parent)\n"
        "    time.sleep(60)\n"
        "p = mp.get_context('fork').Process(target=child, args=(os.getpid(),))\n"
        "p.start()\n"
        "open(sys.argv[1], 'w').write(str(p.pid))\n"
        "time.sleep(0.5)\n"
        "os._exit(0)\n"  # no cleanup, as a killed parent
    )
    # no pipes: run() would wait for the child to close the inherited one
    pid_file = tmp_path / "child.pid"
    subprocess.run([sys.executable, "-c", code.replace("import multiprocessing", "import sys, multiprocessing"),
                    str(pid_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)
    pid = int(pid_file.read_text())

    def alive() -> bool:
        try:
            with open(f"/proc/{pid}/status") as status:
                return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(), "the orphaned child is still running"
