"""kubeloop's closed-loop demo: `make demo` (console script `kubeloop-demo`) and the end-to-end test.

The demo starts its own local cluster, runs the operator under the chart's RBAC, and tells one story on
scikit-learn's bundled iris data: train and roll out v1, serve live traffic, shift one feature, watch the
DriftMonitor trigger a retrain on newer data, and roll out v2. `story.py` holds the story; the end-to-end
test (`tests/e2e/test_closed_loop.py`) runs the same code and asserts every transition it recorded.
"""
