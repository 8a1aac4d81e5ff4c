"""Pure domain of the fraud platform: order schema, feature spec and its two execution paths,
entity-state codec, model artifact and the sample-data generator.

Nothing here imports Dagster, Litestar or Redis; both the code location (`fraud_assets`) and the
scoring service (`fraud_serving`) build on it.
"""
