"""Detector packs: the ONNX detector, its input letterbox and tiling, model packs, their registry and scoring."""
