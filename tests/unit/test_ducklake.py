"""The DuckLake backend against the one-file ledger: the same input gives the same leaves,
links and tree roots; locations and missing parts are refused naming the fix; a locked lake
connection reads the lake and nothing else. (The ledger's contract tests run on both
backends through the ``ledger_location`` fixture; these are about the lake itself.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from ledger import context_crypto
from ledger.errors import LedgerError
from ledger.lake import EXTENSIONS, EXTRA, LakeLocation, extension_file, parse_location
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET, skip_missing_part
from tests.postgres_server import PostgresServer
from tests.unit.events import make_event
from tests.unit.proof_ledger import build_proof_ledger

TOPIC = "t.disclosures"
CODEC = EventCodec()


def _need_wheels() -> None:
    for package in EXTENSIONS.values():
        if importlib.util.find_spec(package) is None:
            skip_missing_part("the DuckLake extension wheels", EXTRA, detail=f"no {package}")


def _lake(server: PostgresServer, tmp_path: Path, name: str) -> LakeLocation:
    _need_wheels()
    return LakeLocation(
        server.conninfo(server.new_database()), f"{tmp_path / name}-data/", tmp_path / name
    )


def _stored(location: Path | LakeLocation) -> dict[str, list[tuple[object, ...]]]:
    with Ledger(location, read_only=True) as ledger:
        return {
            "rows": ledger.con.execute(
                "SELECT chain_id, seq, kafka_offset, event_id, leaf_hash, chain_hash "
                "FROM disclosures ORDER BY chain_id, seq"
            ).fetchall(),
            "heads": ledger.con.execute("SELECT * FROM chain_heads ORDER BY ALL").fetchall(),
            "tree": ledger.con.execute("SELECT * FROM merkle_nodes ORDER BY ALL").fetchall(),
            "offsets": ledger.con.execute(
                "SELECT topic, kafka_partition, next_offset FROM offsets ORDER BY ALL"
            ).fetchall(),
        }


def test_the_same_messages_give_the_same_leaves_links_and_roots_on_both_backends(
    postgres_server: PostgresServer,
    tmp_path: Path,
    reference: ReferenceData,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the contexts' nonces are random: fixed here, so that the stored rows can be equal
    monkeypatch.setattr(context_crypto, "os", SimpleNamespace(urandom=lambda n: bytes(n)))
    # 600 rows on two partitions: each chain completes a 256-leaf subtree (a Merkle node)
    messages = [
        SourceMessage(TOPIC, offset % 2, offset, b"k", CODEC.encode(make_event().to_avro()))
        for offset in range(600)
    ]
    file = tmp_path / "ledger.duckdb"
    lake = _lake(postgres_server, tmp_path, "lake.ledger")
    for location, keys_file in ((file, file), (lake, file)):  # one key store: same pseudonyms
        with (
            SubjectKeyStore(keys_file.with_name("keys.sqlite"), TEST_SECRET) as keys,
            Ledger(location) as ledger,
        ):
            ingestor = Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)
            ingestor.ingest(messages[:250])
            ingestor.ingest(messages[250:])
    on_file, on_lake = _stored(file), _stored(lake)
    assert len(on_file["rows"]) == 600 and len(on_file["tree"]) == 2
    assert on_lake == on_file


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ducklake:sqlite:ledger.db", "ducklake:postgres:<libpq connection string>"),
        ("ducklake:postgres:  ", "names no PostgreSQL database"),
    ],
)
def test_a_malformed_lake_location_is_refused_naming_the_syntax(text: str, named: str) -> None:
    with pytest.raises(LedgerError, match=named):
        parse_location(text)


def test_a_location_is_a_file_or_a_lake_and_its_password_is_never_shown() -> None:
    assert parse_location("ledger.duckdb") == Path("ledger.duckdb")
    lake = parse_location(
        "ducklake:postgres:dbname=ledger host=db password=s3cret", data_path="s3://b/lake/"
    )
    assert isinstance(lake, LakeLocation)
    assert (lake.catalog, lake.data_path) == (
        "dbname=ledger host=db password=s3cret",
        "s3://b/lake/",
    )
    assert "s3cret" not in str(lake) and str(lake).startswith("ducklake:postgres:dbname=ledger")


def test_a_missing_extension_wheel_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "duckdb_extension_ducklake" else real(name, *a),
    )
    with pytest.raises(LedgerError, match=r"disclosure-ledger\[ducklake\]"):
        extension_file("ducklake")


def test_an_unreachable_catalog_is_an_error_naming_the_location_not_the_password(
    tmp_path: Path,
) -> None:
    _need_wheels()
    location = LakeLocation(
        "host=127.0.0.1 port=1 user=nobody dbname=none password=s3cret connect_timeout=2",
        str(tmp_path / "data") + "/",
        tmp_path / "ledger",
    )
    with pytest.raises(LedgerError, match="cannot open the DuckLake ledger") as raised:
        Ledger(location)
    assert "s3cret" not in str(raised.value)


def test_a_locked_lake_connection_reads_the_lake_and_no_other_file(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    lake = _lake(postgres_server, tmp_path, "lake.ledger")
    Ledger(lake).close()
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    with Ledger(lake, read_only=True, external_access=False) as ledger:
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (0,)
        with pytest.raises(duckdb.PermissionException):
            ledger.con.execute(f"SELECT * FROM read_csv('{outside}')").fetchall()
        with pytest.raises(duckdb.Error, match=r"(?i)disabled"):
            ledger.con.execute(f"ATTACH '{postgres_server.conninfo()}' AS other (TYPE postgres)")


def test_verify_report_and_query_run_on_a_lake_through_the_cli(
    postgres_server: PostgresServer,
    tmp_path: Path,
    reference: ReferenceData,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lake = _lake(postgres_server, tmp_path, "ledger.duckdb")
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_LOCAL_PATH", str(lake.local_path))
    built = build_proof_ledger(lake, reference, subject_secret_env.encode())
    argument = built.argument
    assert argument.startswith("ducklake:postgres:")
    checkpoints = str(lake.local_path) + ".checkpoints"
    key = str(built.public_key)
    capsys.readouterr()
    verify = ["verify", "--ledger", argument, "--checkpoints", checkpoints, "--public-key", key]
    assert main(verify) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["report", "ccpa", "--ledger", argument, "--as-of", "2026-12-01"]) == 0
    assert "| privacy.disclosures.v1/1 | 22 |" in capsys.readouterr().out  # its chain heads
    assert main(["status", "--ledger", argument, "--format", "json"]) == 0
    assert '"partitions"' in capsys.readouterr().out  # the lake's coverage, not a file's
    assert not lake.local_path.exists()
    query = ["query", "--ledger", argument, "--format", "csv"]
    assert main([*query, "SELECT count(*) AS n FROM disclosures"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "45"]
    for refused in (
        "SELECT * FROM __ducklake_metadata_lake.public.ducklake_snapshot",
        "SELECT * FROM postgres_query('__ducklake_metadata_lake', 'SELECT 1')",
        "SELECT * FROM duckdb_databases()",
    ):
        assert main([*query, refused]) == 1
        assert "refused" in capsys.readouterr().err
    # the row a later writer alters is caught
    with Ledger(lake) as ledger:
        ledger.con.execute("UPDATE disclosures SET recipient_id = 'someone-else' WHERE seq = 3")
    assert main(verify) == 1


def test_a_command_that_does_not_take_a_lake_yet_refuses_it_before_opening_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_LOCAL_PATH", str(tmp_path / "ledger"))
    lake = "ducklake:postgres:dbname=nowhere host=127.0.0.1"
    assert main(["backup", "--to", str(tmp_path / "copy"), "--ledger", lake]) == 1
    assert "`backup` does not take a DuckLake ledger yet" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no DuckDB file made at the local path
