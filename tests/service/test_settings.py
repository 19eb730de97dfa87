"""Settings the service derives from others."""

from __future__ import annotations

from hazardvision.service.settings import Settings


def test_service_shares_the_cores_among_its_inference_workers(monkeypatch, tmp_path):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings(home=tmp_path, inference_workers=2).threads_per_model_run == 4
    assert Settings(home=tmp_path, inference_workers=16).threads_per_model_run == 1
    assert Settings(home=tmp_path, inference_workers=2, model_threads=3).threads_per_model_run == 3
