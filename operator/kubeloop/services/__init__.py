"""Services: the logic that orchestrates `k8s/` (I/O) with the pure builders and decisions.

One module per concern: `training` (TrainingRun → Job → gates → ModelVersion), `registry` (stages and
the index); issues 7 and 8 add rollout and drift monitoring. Services know nothing of kopf: they raise
`ServiceError`s (or k8s domain errors) and the handlers turn those into kopf's retry or give-up.
"""
