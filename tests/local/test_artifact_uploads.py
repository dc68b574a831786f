"""The artifact upload and download protocol of the local backend, spoken as the ``wandb`` SDK speaks
it (``createArtifact`` -> ``createArtifactManifest`` -> ``createArtifactFiles`` -> PUTs -> commit), with
the cases a real script does not reach: a file already held, a multipart upload, and every bad input
refused with a message naming it, nothing committed that cannot be downloaded whole."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import pytest

from airflow_provider_wbauto.local import LocalWandb
from tests.local.test_server import gql

CREATE = "mutation($i: CreateArtifactInput!) { createArtifact(input: $i) { artifact { id state versionIndex } } }"
MANIFEST = """mutation($a: ID!, $d: String!, $e: String!, $p: String!) {
  createArtifactManifest(input: {artifactID: $a, name: "wandb_manifest.json", digest: $d, entityName: $e,
                                 projectName: $p, runName: "r", type: FULL}) {
    artifactManifest { id file { uploadUrl directUrl } } } }"""
FILES = """mutation($i: CreateArtifactFilesInput!) { createArtifactFiles(input: $i) { files { edges { node {
  name storagePath uploadUrl uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } } } } } }"""
COMMIT = "mutation($a: ID!) { commitArtifact(input: {artifactID: $a}) { artifact { id state digest size fileCount } } }"
COMPLETE = """mutation($i: CompleteMultipartUploadArtifactInput!) {
  completeMultipartUploadArtifact(input: $i) { digest } }"""
DOWNLOAD = """query($e: String!, $p: String!, $c: String!, $a: String!) { project(name: $p, entityName: $e) {
  artifactCollection(name: $c) { artifactMembership(aliasName: $a) { files { edges { node { name directUrl } } } }
  } } }"""


def data(backend: LocalWandb, query: str, **variables: Any) -> Any:
    body = gql(backend, query, **variables).json()
    assert not body.get("errors"), body
    return body["data"]


def error(backend: LocalWandb, query: str, **variables: Any) -> str:
    body = gql(backend, query, **variables).json()
    assert body.get("errors"), body
    return str(body["errors"][0]["message"])


def b64md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def create(backend: LocalWandb, entity: str, digest: str, aliases: tuple[str, ...] = ()) -> str:
    backend.store.upsert_run(entity, "p", "r")
    created = data(
        backend,
        CREATE,
        i={
            "entityName": entity,
            "projectName": "p",
            "runName": "r",
            "artifactTypeName": "model",
            "artifactCollectionName": "m",
            "digest": digest,
            "digestAlgorithm": "MANIFEST_MD5",
            "aliases": [{"alias": a, "artifactCollectionName": "m"} for a in ("latest", *aliases)],
            "enableDigestDeduplication": True,
        },
    )
    return str(created["createArtifact"]["artifact"]["id"])


def manifest(backend: LocalWandb, entity: str, artifact: str) -> dict[str, Any]:
    made = data(backend, MANIFEST, a=artifact, d="", e=entity, p="p")
    return dict(made["createArtifactManifest"]["artifactManifest"]["file"])


def files(backend: LocalWandb, artifact: str, *specs: dict[str, Any]) -> list[dict[str, Any]]:
    made = data(
        backend, FILES, i={"storageLayout": "V2", "artifactFiles": [{"artifactID": artifact, **s} for s in specs]}
    )
    return [e["node"] for e in made["createArtifactFiles"]["files"]["edges"]]


def manifest_json(**bodies: bytes) -> bytes:
    contents = {name: {"digest": b64md5(body), "size": len(body)} for name, body in bodies.items()}
    return json.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": contents}).encode()


def aliases(backend: LocalWandb, artifact_pk: int) -> list[str]:
    return [
        r["alias"]
        for r in backend.store.query("SELECT alias FROM alias WHERE artifact_id=? ORDER BY alias", [artifact_pk])
    ]


def pk(artifact: str) -> int:
    return int(base64.b64decode(artifact).decode().partition(":")[2])


def test_a_version_logs_uploads_commits_and_downloads_whole(backend: LocalWandb, entity: str) -> None:
    weights, readme = b"w" * 1000, b"# model"
    artifact = create(backend, entity, "d1", aliases=("production",))
    assert aliases(backend, pk(artifact)) == []  # aliases wait for the commit: no watcher sees a pending version
    upload = manifest(backend, entity, artifact)
    a, b = files(
        backend, artifact, {"name": "w.bin", "md5": b64md5(weights)}, {"name": "README.md", "md5": b64md5(readme)}
    )
    assert httpx.put(a["uploadUrl"], content=weights).status_code == 200
    assert (
        httpx.put(upload["uploadUrl"], content=manifest_json(**{"w.bin": weights, "README.md": readme})).status_code
        == 200
    )

    said = error(backend, COMMIT, a=artifact)  # README.md is listed but not uploaded
    assert "cannot be committed: not uploaded: README.md" in said
    assert httpx.put(b["uploadUrl"], content=readme).status_code == 200
    committed = data(backend, COMMIT, a=artifact)["commitArtifact"]["artifact"]
    assert (committed["state"], committed["digest"]) == ("COMMITTED", "d1")
    assert (committed["size"], committed["fileCount"]) == (len(weights) + len(readme), 2)  # from the manifest
    assert aliases(backend, pk(artifact)) == ["latest", "production"]

    found = data(backend, DOWNLOAD, e=entity, p="p", c="m", a="production")
    nodes = found["project"]["artifactCollection"]["artifactMembership"]["files"]["edges"]
    got = {n["node"]["name"]: httpx.get(n["node"]["directUrl"]).content for n in nodes}  # no Authorization
    assert got == {"README.md": readme, "w.bin": weights}
    assert httpx.get(upload["directUrl"]).content == manifest_json(**{"w.bin": weights, "README.md": readme})
    rewritten = httpx.put(upload["uploadUrl"], content=manifest_json(**{"w.bin": b"other"}))
    assert rewritten.status_code == 400 and "committed: its manifest cannot change" in rewritten.text
    assert "committed: its manifest cannot change" in error(backend, MANIFEST, a=artifact, d="x", e=entity, p="p")

    # the same content again: the same version, the new alias at once, and nothing to upload
    again = create(backend, entity, "d1", aliases=("staging",))
    assert again == artifact and aliases(backend, pk(artifact)) == ["latest", "production", "staging"]
    (node,) = files(backend, artifact, {"name": "w.bin", "md5": b64md5(weights)})
    assert node["uploadUrl"] is None


def test_a_large_file_uploads_in_parts(backend: LocalWandb, entity: str) -> None:
    chunks = [b"a" * 700, b"b" * 700, b"c" * 5]
    whole = b"".join(chunks)
    artifact = create(backend, entity, "d2")
    parts = [{"partNumber": i + 1, "hexMD5": hashlib.md5(c).hexdigest()} for i, c in enumerate(chunks)]
    (node,) = files(backend, artifact, {"name": "big.bin", "md5": b64md5(whole), "uploadPartsInput": parts})
    multipart = node["uploadMultipartUrls"]
    assert node["uploadUrl"] is None and [p["partNumber"] for p in multipart["uploadUrlParts"]] == [1, 2, 3]
    for part in reversed(multipart["uploadUrlParts"]):  # in any order, as parallel uploads finish
        answer = httpx.put(part["uploadUrl"], content=chunks[part["partNumber"] - 1])
        assert answer.headers["etag"].strip('"') == hashlib.md5(chunks[part["partNumber"] - 1]).hexdigest()
    complete = {
        "completeMultipartAction": "Complete",
        "artifactID": artifact,
        "storagePath": node["storagePath"],
        "uploadID": multipart["uploadID"],
    }
    wrong = [{**parts[0], "hexMD5": "0" * 32}, *parts[1:]]
    assert "hexMD5 does not match" in error(backend, COMPLETE, i={**complete, "completedParts": wrong})
    assert "2 listed" in error(backend, COMPLETE, i={**complete, "completedParts": parts[:2]})
    assert data(backend, COMPLETE, i={**complete, "completedParts": parts})["completeMultipartUploadArtifact"] == {
        "digest": b64md5(whole)
    }
    (again,) = files(backend, artifact, {"name": "big.bin", "md5": b64md5(whole)})
    assert again["uploadUrl"] is None  # held now, whole


@pytest.mark.hostile
def test_bad_uploads_are_refused_naming_what_is_wrong(backend: LocalWandb, entity: str) -> None:
    artifact = create(backend, entity, "d3")
    upload = manifest(backend, entity, artifact)
    (node,) = files(backend, artifact, {"name": "w.bin", "md5": b64md5(b"right")})
    wrong_body = httpx.put(node["uploadUrl"], content=b"wrong")
    assert wrong_body.status_code == 400 and "not the" in wrong_body.text  # the MD5 announced
    token = node["uploadUrl"].split("/blobs/")[1].split("/")[0]
    assert httpx.put(node["uploadUrl"].replace(token, "f" * 32), content=b"right").status_code == 403
    download = upload["directUrl"]
    assert httpx.put(download, content=b"{}").status_code == 403  # a download address does not upload
    bad_manifest = httpx.put(upload["uploadUrl"], content=b'{"contents": []}')
    assert bad_manifest.status_code == 400 and "not a W&B artifact manifest" in bad_manifest.text
    bad_digest = httpx.put(upload["uploadUrl"], content=b'{"contents": {"w.bin": {"digest": "xyz"}}}')
    assert bad_digest.status_code == 400 and "is not a base64 MD5" in bad_digest.text
    assert "is not a base64 MD5 digest" in error(
        backend,
        FILES,
        i={"storageLayout": "V2", "artifactFiles": [{"artifactID": artifact, "name": "x", "md5": "nope"}]},
    )
    assert "has no uploaded manifest" in error(backend, COMMIT, a=artifact)
    gaps = [{"partNumber": 1, "hexMD5": "0" * 32}, {"partNumber": 3, "hexMD5": "0" * 32}]
    spec = {"artifactID": artifact, "name": "g", "md5": b64md5(b"g"), "uploadPartsInput": gaps}
    assert "part numbers must be 1..n" in error(backend, FILES, i={"storageLayout": "V2", "artifactFiles": [spec]})
    complete = {"completeMultipartAction": "Complete", "artifactID": artifact, "storagePath": "x", "completedParts": []}
    assert "was not given by this server" in error(backend, COMPLETE, i={**complete, "uploadID": "forged"})
    assert "metadata must be a JSON object" in error(
        backend,
        CREATE,
        i={"entityName": entity, "projectName": "p", "artifactTypeName": "model", "artifactCollectionName": "m",
           "digest": "d4", "metadata": "[1]"},
    )  # fmt: skip
    (state,) = backend.store.query("SELECT state FROM artifact WHERE id=?", [pk(artifact)])
    assert state["state"] == "PENDING"  # nothing of the above committed it
