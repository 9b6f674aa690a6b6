"""Tests of the ONNX export (recnb.models.onnx_export) and of serving it without PyTorch (recnb.serve)."""
