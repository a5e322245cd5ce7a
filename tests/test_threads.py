"""One Pipeline (and one plugin) shared by threads returns exactly what it returns single-threaded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from graspseg.capture import load_frame_folder
from graspseg.pipeline import Pipeline
from graspseg.plugin import GraspPlanningPlugin
from graspseg.segment import Prompt
from graspseg.sim.synthetic import make_scene


@pytest.fixture(scope="module")
def two_scenes(sample_frame_dir):
    """The bundled mug frame and a synthetic cluttered scene: different sizes of work, different masks."""
    mug = load_frame_folder(sample_frame_dir)
    scene = make_scene("side_by_side", seed=3, n_objects=3)
    m = scene.objects[0].mask
    vs, us = np.nonzero(m)
    i = len(us) // 2
    return [(mug, Prompt.from_point(352, 280)), (scene.frame, Prompt.from_point(int(us[i]), int(vs[i])))]


def _signature(result) -> tuple:
    g = result.grasps
    return (result.mask.tobytes(), np.asarray(g.camera_from_grasp).round(9).tobytes(),
            np.asarray(g.width_m).round(9).tobytes(), np.asarray(g.accepted).tobytes())


def test_shared_pipeline_matches_single_threaded(two_scenes):
    pipe = Pipeline()
    reference = [_signature(pipe.perceive(f, p)) for f, p in two_scenes]
    assert reference[0] != reference[1]  # the two scenes really differ
    n_threads, rounds = 4, 50
    mismatches, errors, calls = [], [], [0]
    lock = threading.Lock()

    def work(t: int) -> None:
        for r in range(rounds):
            k = (t + r) % 2
            try:
                sig = _signature(pipe.perceive(*two_scenes[k]))
            except Exception as e:  # a crash in a worker thread is a failure of the test, reported below
                errors.append(repr(e))
                continue
            with lock:
                calls[0] += 1
                if sig != reference[k]:
                    mismatches.append((t, r, k))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    assert calls[0] == n_threads * rounds == 200
    assert mismatches == []


def test_shared_plugin_matches_single_threaded(two_scenes):
    plugin = GraspPlanningPlugin()
    reference = [plugin.plan(f, p).to_dict() for f, p in two_scenes]
    results: dict[tuple[int, int], dict] = {}

    def work(t: int) -> None:
        for r in range(4):
            k = (t + r) % 2
            results[t, r] = (k, plugin.plan(*two_scenes[k]).to_dict())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 12
    for k, doc in results.values():
        assert doc == reference[k]
