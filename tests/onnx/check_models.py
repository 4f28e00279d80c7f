#!/usr/bin/env python3
"""Runs onnx.checker (full check: types and shapes inferred) on every models/<case>/model.onnx
that test_onnx_export wrote. Exits 77 (ctest: skipped) when the onnx package is missing, unless
QNAS_REQUIRE_ONNX_RUNTIMES=1, when that fails the test."""
import os
import sys


def missing(message):
    print(message)
    if os.environ.get("QNAS_REQUIRE_ONNX_RUNTIMES") == "1":
        print("QNAS_REQUIRE_ONNX_RUNTIMES=1: failing")
        sys.exit(1)
    sys.exit(77)


def main():
    if len(sys.argv) != 2:
        print("usage: check_models.py <models folder>")
        return 2
    try:
        import onnx
        import onnx.checker
    except ImportError as e:
        missing(f"onnx_checker: the Python package onnx is missing ({e}); Debian: apt-get install python3-onnx "
                "(it is installed for /usr/bin/python3)")
    root = sys.argv[1]
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "model.onnx")))
    if not cases:
        print(f"onnx_checker: no models under {root}")
        return 1
    failed = 0
    for case in cases:
        path = os.path.join(root, case, "model.onnx")
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            print(f"{case}: ok (onnx {onnx.__version__}, ir {model.ir_version}, opset "
                  f"{model.opset_import[0].version}, {len(model.graph.node)} nodes)")
        except Exception as e:  # the checker's own exception types differ between versions
            failed += 1
            print(f"{case}: FAILED: {e}")
    print(f"onnx_checker: {len(cases) - failed} of {len(cases)} models pass onnx.checker (full_check)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
