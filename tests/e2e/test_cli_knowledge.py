"""``egide libraries``, ``egide ingest`` and ``egide search`` against a running server: a
folder is ingested with progress, a malformed or encrypted file fails alone with its
reason, and the others are searchable."""

from __future__ import annotations

import os
import subprocess
import sys

from support.documents import encrypt_pdf, make_pdf
from support.egide_process import start_egide

FAKE = """
default_models = false
ceiling = "DR"
[[models]]
id = "echo"
backend = "fake"
capabilities = ["chat", "embeddings"]
"""


def _egide(*args: str, server) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EGIDE_HOME": str(server.home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "egide.main", *args, "--url", server.url, "--key", server.key],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_ingest_a_folder_where_one_file_is_broken(tmp_path) -> None:
    server = start_egide(tmp_path / "home", FAKE)
    try:
        result = _egide("libraries", "create", "rapports", "--ceiling", "DR", server=server)
        assert result.returncode == 0, result.stderr
        listed = _egide("libraries", "list", server=server)
        library_id = next(
            line.split("│")[1].strip() for line in listed.stdout.splitlines() if "rapports" in line
        )
        folder = tmp_path / "docs"
        (folder / "sub").mkdir(parents=True)
        (folder / "carburant.md").write_text("# Carburant\n\nLe dépôt de Brévane tient 40 m3.\n")
        (folder / "sub" / "convoi.txt").write_text("Le convoi part à 6 h vers Tazenne.\n")
        (folder / "casse.pdf").write_bytes(b"%PDF-1.7\nthis is not a pdf at all")
        (folder / "secret.pdf").write_bytes(encrypt_pdf(make_pdf([["Texte."]]), "mot-de-passe"))
        (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a document: skipped
        result = _egide(
            "ingest", str(folder), "--library", library_id, "--label", "DR", server=server
        )
        assert result.returncode == 1, result.stdout + result.stderr
        err = result.stderr
        assert "casse.pdf" in err and "secret.pdf" in err and "password" in err.lower()
        assert "2 document(s) ingested, 2 failed" in err

        result = _egide("search", "convoi Tazenne", "--library", library_id, server=server)
        assert result.returncode == 0, result.stderr
        assert "convoi.txt" in result.stdout and "DR" in result.stdout

        result = _egide("ingest", str(folder / "nope"), "--library", library_id, server=server)
        assert result.returncode == 1 and "neither a file nor a folder" in result.stderr
        result = _egide("search", "x", "--library", "unknown", server=server)
        assert result.returncode == 1 and "404" in result.stderr
    finally:
        server.stop()
