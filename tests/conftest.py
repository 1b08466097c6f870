"""Fixtures that start real services: PostgreSQL (initdb + pg_ctl), a Chroma server
(`chroma run`) and an OpenAI-compatible llama.cpp server, all on loopback in
temporary directories. Without the binaries a test is skipped locally; under CI
(CI=true) a missing service fails the run instead, so nothing is silently skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.llamacpp import bundled_gguf_path
from tests.services import free_port, stop, temporary_postgres, wait_for_port
from tests.services import llama_server as start_llama_server

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "data" / "handbook"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# Tests that took a second or more on 2 cores without any server (`pytest --durations=0
# -m "not llm and not postgres and not chroma_server and not fallback_server"`): killed
# and restarted processes, CLI subprocesses, the real embedder over many chunks, the real
# model, fresh interpreters that check what an import loads. `make test-fast` leaves them
# out; `make test` runs them. The import-cycle test (tests/test_imports.py) stays in.
SLOW = {
    "test_authorization.py": {
        "test_another_users_private_collection_answers_exactly_as_a_missing_one",
        "test_writing_a_shared_collection_takes_its_creator_or_an_admin_key",
    },
    "test_collections.py": {
        "test_cli_collections_reindex_and_ingest_report",
        "test_create_list_describe_delete",
        "test_querying_with_another_embedder_is_a_clear_error",  # loads torch for a second embedder
        "test_reindex_switches_only_when_complete",
    },
    "test_crash_safety.py": {
        "test_killed_first_ingest_then_rerun_equals_uninterrupted",
        "test_killed_reindex_keeps_serving_the_old_index",
        "test_killed_sync_then_rerun_equals_uninterrupted",
    },
    "test_embedder_determinism.py": {
        "test_incremental_ingest_equals_a_fresh_one",
        "test_int8_stays_within_cosine_099_of_fp32",
        "test_same_text_same_vector_whatever_its_batch",
    },
    "test_errors_and_cli.py": {
        "test_cli_reports_user_errors_without_traceback",
        "test_data_dir_that_is_a_file_is_a_clear_error",
    },
    "test_eval_quality.py": {"test_overlap_metrics_on_known_cases"},  # imports the metric libraries
    "test_eval_retrieval.py": {
        "test_calibration_writes_thresholds_that_load_back",
        "test_the_sample_questions_keep_their_floor",
        "test_the_terminal_report_lists_metrics_and_misses",
    },
    "test_extras.py": {"test_library_and_everyday_cli_need_no_extra"},
    "test_hostile_ingest.py": {
        "test_a_killed_large_file_resumes_and_check_says_ingest_again",
        "test_a_large_file_is_written_in_batches_renewing_the_lock",
        "test_an_upload_job_reports_progress_while_it_runs",
        "test_splitting_is_linear_without_spaces_and_chunks_fit",
        "test_text_a_store_would_refuse_is_cleaned_not_fatal",
    },
    "test_imports.py": {"test_package_imports_alone"},
    "test_ingest.py": {
        "test_chunks_fit_the_embedder",
        "test_ingesting_one_file_leaves_the_rest_of_the_collection",
        "test_renamed_and_moved_files_are_not_embedded_again",
    },
    "test_memory_cli.py": {"test_sessions_export_import_show"},
    "test_memory_concurrency.py": {"test_eight_processes_on_one_sqlite_file"},
    "test_memory_contract.py": {"test_a_turn_that_fails_half_way_leaves_nothing"},
    "test_migrations.py": {"test_processes_starting_together_on_a_fresh_database_all_succeed"},
    "test_retrieval.py": {
        "test_a_cross_encoder_reorders_the_fused_candidates",  # loads torch
        "test_a_document_with_more_chunks_than_chroma_takes_in_one_call_is_stored",
    },
    "test_testing_fakes.py": {"test_importing_the_fakes_loads_no_model"},
    "test_trust.py": {
        "test_eval_routing_fits_a_model_and_writes_the_operating_point",
        "test_every_sentence_shown_as_the_answer_is_backed_and_the_confidence_is_in_the_reason",
        "test_the_follow_up_never_carries_the_prompt_example_and_finds_the_workaround",
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a second or more; left out of `make test-fast` (tests/conftest.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if getattr(item, "originalname", item.name) in SLOW.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"required test service unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-state")


@pytest.fixture(scope="session")
def bot(shared_state: Path) -> Assistant:
    """One assistant over the sample handbook, with the real model and embedder."""
    assistant = Assistant.from_settings(Settings(data_dir=shared_state))
    report = assistant.ingest(HANDBOOK, collection="handbook")
    assert report.files_failed == [], report.files_failed
    return assistant


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if url := os.environ.get("ASSISTANT_TEST_POSTGRES_URL"):
        yield url
        return
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    with temporary_postgres(PG_BIN, free_port()) as url:
        yield url


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        unavailable("the chroma CLI is not installed in this environment")
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(chroma), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def llama_server_available() -> None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        unavailable("llama-cpp-python[server] is not installed")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible endpoint: llama_cpp.server serving the bundled GGUF as "large"."""
    llama_server_available()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with start_llama_server(bundled_gguf_path(), log) as (url, _process):
        yield url
