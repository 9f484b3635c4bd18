"""Package layout: a valid BagIt bag with what a verifier needs; no imagery in the summary."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import bagit
import pytest

from redress.evidence.errors import EvidenceDeletedError, ExportError

from .conftest import EvidenceEnv, capture_items, capture_request


def _unzip(path: Path, into: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    (bag,) = list(into.iterdir())
    return bag


def test_package_is_a_valid_bag_with_the_promised_layout(
    sqlite_env: EvidenceEnv, tmp_path: Path
) -> None:
    ids = capture_items(sqlite_env, 2)
    target = tmp_path / "case.zip"
    with sqlite_env.service() as service:
        result = service.export(ids, target, "liaison")
    bag_dir = _unzip(target, tmp_path / "out")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    assert set(bag.algorithms) == {"sha256", "sha512"}
    data = bag_dir / "data"
    for name in (
        "VERIFY.md",
        "summary.html",
        "package.json",
        "checkpoint/checkpoint.txt",
        "key/ledger-key.pem",
        "key/ledger-key.vkey",
        "ledger/consistency.json",
        "tools/redress_verify.py",
    ):
        assert (data / name).is_file(), name
    index = json.loads((data / "package.json").read_text())
    assert index["key_fingerprint"] == result.key_fingerprint
    assert [i["item"] for i in index["items"]] == ids
    original = capture_request(0).content
    assert (bag_dir / index["items"][0]["content"]).read_bytes() == original
    assert index["items"][0]["content"].endswith("/content.jpg")
    # The export itself is in the package, as the newest entry under the checkpoint.
    assert index["export_seq"] == result.export_seq == result.checkpoint_size - 1
    assert result.key_fingerprint in (data / "VERIFY.md").read_text()


def test_summary_shows_facts_but_no_imagery(sqlite_env: EvidenceEnv, tmp_path: Path) -> None:
    ids = capture_items(sqlite_env, 1)
    with sqlite_env.service() as service:
        service.export(ids, tmp_path / "p.zip", "liaison")
        sha = service.item(ids[0]).sha256
    html = (_unzip(tmp_path / "p.zip", tmp_path / "o") / "data" / "summary.html").read_text()
    assert sha in html
    assert "<img" not in html.lower()
    assert "data:image" not in html.lower()
    assert "caption text" not in html  # personal facts stay in the capture record


def test_export_is_logged_and_refuses_bad_requests(sqlite_env: EvidenceEnv, tmp_path: Path) -> None:
    ids = capture_items(sqlite_env, 2)
    with sqlite_env.service() as service:
        service.export(ids[:1], tmp_path / "p.zip", "liaison")
        kinds = [
            json.loads(e.body)["kind"] for e in service.ledger.entries(range(service.ledger.size()))
        ]
        assert kinds[-1] == "evidence:package:exported"
        with pytest.raises(ExportError, match="never overwritten"):
            service.export(ids[:1], tmp_path / "p.zip", "liaison")
        with pytest.raises(ExportError, match="at least one"):
            service.export([], tmp_path / "q.zip", "liaison")
        with pytest.raises(ExportError, match="does not exist"):
            service.export(ids, tmp_path / "missing" / "q.zip", "liaison")
        service.delete(ids[1], "victim", "request")
        with pytest.raises(EvidenceDeletedError):
            service.export(ids, tmp_path / "q.zip", "liaison")
    assert not (tmp_path / "q.zip").exists()


def test_case_export_selects_the_case_items(sqlite_env: EvidenceEnv) -> None:
    ids = capture_items(sqlite_env, 2)
    with sqlite_env.service() as service:
        assert service.item_ids_for_case("case-1") == ids
        assert service.item_ids_for_case("case-2") == []
