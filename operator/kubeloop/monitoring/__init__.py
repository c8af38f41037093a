"""The DriftMonitor's pure logic: one window of live traffic in, a verdict, a status and a decision out.

- :mod:`~kubeloop.monitoring.window`: per-pod baselines and the window's counts summed over replicas,
  robust to restarts and counter resets.
- :mod:`~kubeloop.monitoring.reservoir`: the window's share of the servers' reservoir samples, pooled.
- :mod:`~kubeloop.monitoring.evaluation`: the spec as a drift configuration, and the window's verdict.
- :mod:`~kubeloop.monitoring.performance`: online accuracy or error from feedback labels.
- :mod:`~kubeloop.monitoring.policy`: the retrain policy (consecutive windows, floor, schedule, cooldown,
  daily cap, one retrain per model at a time).
- :mod:`~kubeloop.monitoring.cron`: when a cron schedule last fired.
- :mod:`~kubeloop.monitoring.status`: the DriftMonitor status after a check.

Nothing here imports kopf or the Kubernetes client; the clock is always an argument.
"""
