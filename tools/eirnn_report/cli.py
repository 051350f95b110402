"""Command line of tools/report: tools/report RESULTS.h5 [--out DIR] [--html] [--no-figures].

Errors in the input (missing file, not a results file) print one line on stderr and return 2.
"""
import argparse
import os
import sys

from .data import ResultsError, open_results
from .report import write_report

EXIT_INPUT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):
        print(f"report: error: {message}", file=sys.stderr)
        sys.exit(EXIT_INPUT_ERROR)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="report", description=(
        "Figures and a claims table (a verdict per claim of docs/MODEL.md §7 and task) from an "
        "eirnn results file. Writes PNG figures and report.md into DIR and prints the path of "
        "report.md."))
    parser.add_argument("results", help="results file written by eirnn train / sweep / reproduce")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: <results stem>_report beside the file)")
    parser.add_argument("--html", action="store_true", help="also write report.html")
    parser.add_argument("--no-figures", action="store_true",
                        help="tables and verdicts only, no figures (much faster on large files)")
    return parser


def default_out_dir(results_path: str) -> str:
    stem = os.path.splitext(os.path.basename(results_path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(results_path)), f"{stem}_report")


def main(argv: list) -> int:
    args = _parser().parse_args(argv)
    out_dir = args.out or default_out_dir(args.results)
    try:
        handle, results = open_results(args.results)
    except ResultsError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        path = write_report(results, out_dir, args.html, not args.no_figures)
    except OSError as error:
        print(f"report: error: {out_dir}: {error.strerror or error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    finally:
        handle.close()
    print(path)
    return 0
