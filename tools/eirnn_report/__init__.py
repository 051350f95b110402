"""Reads eirnn results files (docs/FORMAT.md) and writes the study report: figures, claims and
verdicts."""
