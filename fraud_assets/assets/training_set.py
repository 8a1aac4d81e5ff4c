"""`training_set`: the orders a model may learn from at a cutoff, with the labels known by then,
split out of time into training and validation days; and the checks that hold it to those rules.

Unpartitioned, but it never loads every `entity_features` partition through an IO manager: one
Dask task per day reads that day's file and writes that day's training rows.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import json
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from fraud_assets.lib.label_feed import read_feed
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.model.dataset import (
    KNOWN_FRAUD_FILE,
    LABEL_FEED_FILE,
    MANIFEST,
    TRAIN,
    VALIDATION,
    Manifest,
    TrainingSetConfig,
    class_counts,
    day_file,
    feed_for_cutoff,
    file_fingerprint,
    latest_manifest_path,
    manifest_fingerprint,
    merge_known_fraud,
    plan_window,
    prepare_day_file,
    prune_training_sets,
    read_latest_manifest,
    summarize,
    time_rule_violations,
    training_set_dir,
    warmup_end,
    warmup_note,
)
from fraud_core.storage import as_path, atomic_path, write_parquet

LABELS_KNOWN_AT_CUTOFF = "labels_known_at_cutoff"
BOTH_CLASSES_PRESENT = "both_classes_in_train_and_validation"

_DEFAULTS = TrainingSetConfig()


class TrainingSetAssetConfig(Config):
    cutoff: str | None = Field(
        default=None,
        description="YYYY-MM-DD: only what was known before this day counts (labels, orders). "
        "Empty: the day after the newest entity_features partition.",
    )
    window_days: int = Field(
        default=_DEFAULTS.window_days, description="Matured days read: train + gap + validation."
    )
    maturity_days: int = Field(
        default=_DEFAULTS.maturity_days,
        description="Orders younger than this at the cutoff are left out (labels still coming).",
    )
    validation_days: int = Field(
        default=_DEFAULTS.validation_days, description="The newest matured days validate."
    )
    gap_days: int = Field(
        default=_DEFAULTS.gap_days, description="Days left out between training and validation."
    )
    negative_rate: float = Field(
        default=_DEFAULTS.negative_rate,
        description="Share of non-fraud training rows kept (weighted 1/rate); 1 keeps all.",
    )
    seed: int = Field(default=_DEFAULTS.seed, description="Which non-fraud rows are kept.")
    warmup_days: int | None = Field(
        default=None,
        description="Days after the first day of data that are not trained on: their features' "
        "windows still reach back before the data (empty: the contract's feature horizon).",
    )
    min_train_days: int = Field(
        default=_DEFAULTS.min_train_days,
        description="When the data are too short to skip the whole warm-up, it is cut short so "
        "that this many training days remain (the metadata says so).",
    )

    def training(self, spec: FeatureSpec = DEFAULT_SPEC) -> TrainingSetConfig:
        return TrainingSetConfig(
            window_days=self.window_days,
            maturity_days=self.maturity_days,
            validation_days=self.validation_days,
            gap_days=self.gap_days,
            negative_rate=self.negative_rate,
            seed=self.seed,
            warmup_days=spec.warmup_days if self.warmup_days is None else self.warmup_days,
            min_train_days=self.min_train_days,
        )


@asset(
    deps=["entity_features", "labels"],
    group_name="model",
    kinds={"dask", "pandas", "parquet"},
    description=(
        "The orders the model learns from at a cutoff, with their features as of just before "
        "each order. Labels are those known at the cutoff, from the order rows and the label "
        "feed (`labels`; a chargeback that had not arrived yet counts as not fraud, as it did "
        "for the fraud team that day); orders younger than "
        "the maturity window are left out; the newest matured days validate, older days train, "
        "with a gap between. Training starts after the features' warm-up (the first weeks of "
        "data, whose windows still reach back before the data), or as late as the data allow: "
        "`warmup` says which. Non-fraud training rows are subsampled and weighted back up."
    ),
)
def training_set(
    context: AssetExecutionContext,
    config: TrainingSetAssetConfig,
    layout: DataLayoutResource,
    dask: DaskResource,
) -> MaterializeResult:
    data = layout.layout()
    on_disk = layout.feature_days(data)
    cutoff = date.fromisoformat(config.cutoff) if config.cutoff else on_disk[-1] + timedelta(1)
    spec = layout.contract().spec
    settings = config.training(spec)
    try:
        window = plan_window(cutoff, settings, first_day=on_disk[0])
    except ValueError as err:
        raise Failure(str(err)) from err
    warmup = warmup_note(window, on_disk[0], settings)
    warmed = window.train_first >= warmup_end(on_disk[0], settings)
    if not warmed:
        context.log.warning(warmup)
    available = set(on_disk)
    days = [d for d in window.days() if d in available]
    missing = [d for d in window.days() if d not in available]
    if missing:
        context.log.warning(
            f"{len(missing)} day(s) of the window have no entity_features ({missing[0]}.."
            f"{missing[-1]}): they are left out"
        )
    folder = training_set_dir(data, cutoff, context.run.run_id[:8])
    sources = [str(data.entity_features(d)) for d in days]
    targets = [str(day_file(folder, window.role(d), d)) for d in days]
    # the label feed (labels asset) beside the order rows' own labels: kept with the set
    feed = feed_for_cutoff(read_feed(data), window.train_first)
    feed_path = None
    if len(feed):
        feed_path = str(write_parquet(feed, folder / LABEL_FEED_FILE))
    with dask.get_client() as client:
        futures = client.map(
            prepare_day_file,
            sources,
            targets,
            days,
            window=window,
            config=settings,
            spec=spec,
            feed_path=feed_path,
            pure=False,
        )
        results = client.gather(futures)
    stats = [s for s, _ in results]
    known = merge_known_fraud([k for _, k in results])
    known_frame = known.rename("label_date").rename_axis(spec.primary).reset_index()
    write_parquet(known_frame.astype({spec.primary: str}), folder / KNOWN_FRAUD_FILE)
    summary = summarize(window, settings, stats)
    files = {
        role: [t for t, d in zip(targets, days, strict=True) if window.role(d) == role]
        for role in (TRAIN, VALIDATION)
    }
    for role in (TRAIN, VALIDATION):
        if not files[role]:
            raise Failure(f"no {role} day has entity_features in the window {window.to_dict()}")
    inputs = {s: file_fingerprint(as_path(s)) for s in sources}
    if feed_path:
        inputs[LABEL_FEED_FILE] = str(pd.util.hash_pandas_object(feed, index=False).sum())
    manifest = Manifest(
        folder=str(folder),
        window=window.to_dict(),
        config=summary["config"],
        feature_names=spec.feature_names,
        files=files,
        summary=summary,
        inputs=inputs,
        fingerprint=manifest_fingerprint(inputs, summary),
        primary=spec.primary,
    )
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(manifest.to_json())
    # The blocking checks' rules on what was just written, before `fraud_model` can see it:
    # a training set that breaks them never becomes the latest.
    violations, counts = time_rule_violations(manifest), class_counts(manifest)
    if any(violations.values()) or not all(v > 0 for v in counts.values()):
        raise Failure(
            description=f"the training set at {folder} breaks a blocking rule (labels known at "
            "the cutoff, both classes present): it is not made the latest; "
            "fraud_model keeps the previous one",
            metadata={"violations": violations, **counts},
        )
    with atomic_path(latest_manifest_path(data)) as tmp:
        tmp.write_text(json.dumps({"manifest": str(folder / MANIFEST), "cutoff": str(cutoff)}))
    for old in prune_training_sets(data):
        context.log.info(f"deleted the old training set {old}")

    train, valid = summary[TRAIN], summary[VALIDATION]
    context.log.info(
        f"cutoff {cutoff}: {train['rows']:,} training rows ({train['positives']:,} fraud) over "
        f"{train['days']} days, {valid['rows']:,} validation rows ({valid['positives']:,} fraud)"
    )
    return MaterializeResult(
        metadata={
            "cutoff": str(cutoff),
            "train_days": f"{window.train_first}..{window.train_last}",
            "warmup": warmup,
            "warmup_skipped": warmed,
            "validation_days": f"{window.validation_first}..{window.validation_last}",
            "dagster/row_count": train["rows"] + valid["rows"],
            "train_rows": train["rows"],
            "train_fraud": train["positives"],
            "validation_rows": valid["rows"],
            "validation_fraud": valid["positives"],
            "validation_fraud_rate": MetadataValue.float(
                valid["positives"] / valid["rows"] if valid["rows"] else 0.0
            ),
            "labels_withheld_by_cutoff": train["withheld_labels"] + valid["withheld_labels"],
            "label_feed_events": len(feed),
            "missing_feature_days": len(missing),
            "fingerprint": manifest.fingerprint,
            "path": MetadataValue.path(str(folder)),
            "summary": MetadataValue.json(summary),
        }
    )


# ---------------------------------------------------------------------------------------------
# Checks: the time rules hold in the written files, and there is something to learn.


@asset_check(
    asset=training_set,
    name=LABELS_KNOWN_AT_CUTOFF,
    blocking=True,
    description="No training or validation row carries a label that arrived after the cutoff "
    "or an order younger than the maturity window.",
)
def labels_known_at_cutoff(
    context: AssetCheckExecutionContext, layout: DataLayoutResource
) -> AssetCheckResult:
    manifest = read_latest_manifest(layout.layout())
    bad = time_rule_violations(manifest)
    return AssetCheckResult(
        passed=not any(bad.values()),
        metadata={**bad, "cutoff": manifest.window["cutoff"]},
    )


@asset_check(
    asset=training_set,
    name=BOTH_CLASSES_PRESENT,
    blocking=True,
    description="Training and validation days each hold fraud and non-fraud rows.",
)
def both_classes_in_train_and_validation(
    context: AssetCheckExecutionContext, layout: DataLayoutResource
) -> AssetCheckResult:
    manifest = read_latest_manifest(layout.layout())
    counts = class_counts(manifest)
    return AssetCheckResult(passed=all(v > 0 for v in counts.values()), metadata=counts)


TRAINING_SET_CHECKS = [labels_known_at_cutoff, both_classes_in_train_and_validation]
