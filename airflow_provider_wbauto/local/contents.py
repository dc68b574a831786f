"""What the ``wandb`` SDK uploads and downloads for an artifact: file bodies kept once by their MD5 (as
W&B's storage keys them, so a file logged again is not uploaded again), multipart uploads put together,
and each version's manifest with the files it lists. A version commits only when its manifest and every
file the manifest lists are stored: nothing is committed that cannot be downloaded whole.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import sqlite3
from typing import Any

from .store import Store, StoreError, now_iso

HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")
MAX_PARTS = 10_000  # S3's limit, which the SDK sizes its parts by


def hex_md5(digest: str, field: str = "md5") -> str:
    """W&B sends MD5 digests in base64; addresses and keys here use hex."""
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise StoreError(f"{field} {digest!r} is not a base64 MD5 digest (16 bytes)")
    return raw.hex()


def b64_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def has_blob(store: Store, md5: str) -> bool:
    return store.one("SELECT 1 FROM blob WHERE md5=?", [md5]) is not None


def put_blob(store: Store, md5: str, body: bytes) -> None:
    """A file body uploaded to the address for ``md5``; refused when it is not what was announced."""
    got = hashlib.md5(body).hexdigest()
    if got != md5:
        raise StoreError(f"the body's MD5 is {got}, not the {md5} this address was made for")
    with store.transaction() as db:
        db.execute("INSERT OR IGNORE INTO blob (md5, body) VALUES (?, ?)", (md5, body))


def blob(store: Store, md5: str) -> bytes:
    row = store.one("SELECT body FROM blob WHERE md5=?", [md5])
    if row is None:
        raise StoreError(f"no file with MD5 {md5} was uploaded")
    return bytes(row["body"])


# -- multipart uploads -------------------------------------------------------------------------------


def start_upload(md5: str, parts: list[dict[str, Any]]) -> str:
    """An upload id for a file sent in parts; it names the whole file's MD5, checked at completion."""
    numbers = [int(p["partNumber"]) for p in parts]
    if not 1 <= len(numbers) <= MAX_PARTS or sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise StoreError(f"uploadPartsInput: part numbers must be 1..n without gaps, n at most {MAX_PARTS}")
    return f"{md5}-{secrets.token_hex(8)}"


def put_part(store: Store, upload_id: str, part: int, body: bytes) -> str:
    """One part of a multipart upload; returns its ETag (the part's hex MD5, as S3 answers)."""
    if not 1 <= part <= MAX_PARTS:
        raise StoreError(f"part number {part} is not within 1..{MAX_PARTS}")
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO upload_part (upload_id, part, body) VALUES (?, ?, ?)", (upload_id, part, body)
        )
    return hashlib.md5(body).hexdigest()


def complete_upload(store: Store, upload_id: str, completed: list[dict[str, Any]]) -> str:
    """The parts joined in order into the file: each part's MD5 as the client listed it, the whole
    file's as announced; returns the file's base64 MD5."""
    md5 = upload_id.partition("-")[0]
    if not HEX_MD5.match(md5):
        raise StoreError(f"uploadID {upload_id!r} was not given by this server")
    with store.transaction() as db:
        rows = {
            r["part"]: bytes(r["body"]) for r in db.execute("SELECT * FROM upload_part WHERE upload_id=?", (upload_id,))
        }
        body = bytearray()
        for item in sorted(completed, key=lambda p: int(p["partNumber"])):
            number = int(item["partNumber"])
            if number not in rows:
                raise StoreError(f"part {number} of upload {upload_id} was not uploaded")
            if hashlib.md5(rows[number]).hexdigest() != str(item["hexMD5"]).strip('"').lower():
                raise StoreError(f"part {number} of upload {upload_id}: hexMD5 does not match the uploaded part")
            body += rows[number]
        if len(completed) != len(rows):
            raise StoreError(f"upload {upload_id}: {len(rows)} parts uploaded, {len(completed)} listed")
        put_blob(store, md5, bytes(body))
        db.execute("DELETE FROM upload_part WHERE upload_id=?", (upload_id,))
    return b64_md5(bytes(body))


# -- manifests -------------------------------------------------------------------------------------------


def set_manifest(store: Store, artifact_id: int, digest: str, type: str = "FULL") -> None:
    """``createArtifactManifest`` / ``updateArtifactManifest``: the manifest's digest before its upload."""
    with store.transaction() as db:
        _pending(store, artifact_id)
        db.execute(
            "INSERT INTO artifact_manifest (artifact_id, digest, type, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (artifact_id) DO UPDATE SET digest=excluded.digest, type=excluded.type",
            (artifact_id, digest, type, now_iso()),
        )


def _pending(store: Store, artifact_id: int) -> None:
    """A committed version is immutable: its manifest (what a download reads) never changes."""
    row = store.one("SELECT state FROM artifact WHERE id=?", [artifact_id])
    if row is None:
        raise StoreError(f"artifact {artifact_id} does not exist")
    if row["state"] != "PENDING":
        raise StoreError(f"artifact {artifact_id} is {row['state'].lower()}: its manifest cannot change")


def manifest(store: Store, artifact_id: int) -> sqlite3.Row | None:
    return store.one("SELECT * FROM artifact_manifest WHERE artifact_id=?", [artifact_id])


def put_manifest(store: Store, artifact_id: int, body: bytes) -> None:
    """The uploaded ``wandb_manifest.json``: kept whole for downloads, and its entries (files stored
    here; references to other storage are not) become the version's files, size and count."""
    try:
        parsed = json.loads(body)
        contents = parsed["contents"]
        if not isinstance(contents, dict):
            raise TypeError
        files = [
            (str(name), hex_md5(str(entry["digest"]), f"contents[{name!r}].digest"), int(entry.get("size") or 0))
            for name, entry in contents.items()
            if not entry.get("ref")
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = str(exc) if isinstance(exc, StoreError) else 'expected {"contents": {path: {digest, size}}}'
        raise StoreError(f"the manifest is not a W&B artifact manifest: {detail}") from None
    with store.transaction() as db:
        _pending(store, artifact_id)
        if manifest(store, artifact_id) is None:
            raise StoreError(f"artifact {artifact_id} has no manifest to upload (createArtifactManifest first)")
        db.execute("UPDATE artifact_manifest SET body=? WHERE artifact_id=?", (body, artifact_id))
        db.execute("DELETE FROM artifact_file WHERE artifact_id=?", (artifact_id,))
        db.executemany(
            "INSERT INTO artifact_file (artifact_id, name, md5, size) VALUES (?, ?, ?, ?)",
            [(artifact_id, *f) for f in files],
        )
        db.execute(
            "UPDATE artifact SET size=?, file_count=? WHERE id=?",
            (sum(f[2] for f in files), len(files), artifact_id),
        )


def manifest_body(store: Store, artifact_id: int) -> bytes:
    row = manifest(store, artifact_id)
    if row is None or row["body"] is None:
        raise StoreError(f"artifact {artifact_id} has no uploaded manifest")
    return bytes(row["body"])


def commit(store: Store, artifact_id: int) -> None:
    """``commitArtifact``: refused while the manifest or a file it lists is not uploaded."""
    with store.transaction():
        row = store.one("SELECT state FROM artifact WHERE id=?", [artifact_id])
        if row is None:
            raise StoreError(f"artifact {artifact_id} does not exist")
        if row["state"] == "COMMITTED":
            return  # a retried commit
        manifest_body(store, artifact_id)
        missing = store.query(
            "SELECT name FROM artifact_file f WHERE artifact_id=?"
            " AND NOT EXISTS (SELECT 1 FROM blob b WHERE b.md5=f.md5) ORDER BY name",
            [artifact_id],
        )
        if missing:
            names = ", ".join(r["name"] for r in missing[:5])
            raise StoreError(f"artifact {artifact_id} cannot be committed: not uploaded: {names}")
        store.commit_version(artifact_id)


def use(store: Store, entity: str, project: str, run: str, artifact_id: int, used_as: str | None) -> None:
    """``useArtifact``: the run's input, kept for lineage."""
    with store.transaction() as db:
        pk = store.run_pk(entity, project, run)
        if db.execute("SELECT 1 FROM artifact WHERE id=?", (artifact_id,)).fetchone() is None:
            raise StoreError(f"artifact {artifact_id} does not exist")
        db.execute(
            "INSERT OR REPLACE INTO artifact_use (run_id, artifact_id, used_as) VALUES (?, ?, ?)",
            (pk, artifact_id, used_as),
        )
