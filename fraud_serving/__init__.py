"""The scoring service: a Litestar app over the Redis online store and the deployed model.

Entry point: `fraud_serving.app:create_app` (run by `fraud serve`). It imports `fraud_core` and
never `fraud_assets`, Dagster or Dask.
"""
