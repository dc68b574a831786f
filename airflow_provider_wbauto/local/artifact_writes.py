"""GraphQL resolvers for what the ``wandb`` SDK sends to log, upload, commit, use and download an
artifact, in the order it sends them: ``createArtifact`` (a pending version), ``createArtifactManifest``,
``createArtifactFiles`` (an upload address per file this server does not hold yet; parts for a large
one, joined by ``completeMultipartUploadArtifact``), the PUTs, ``commitArtifact``; ``useArtifact``; and
for a download ``currentManifest`` and the files' ``directUrl``. Addresses are signed by the server
(``info.context["signed"]``) since the SDK sends no Authorization header to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import contents
from .resolvers import (
    _artifact_by_pk,
    _connection,
    _cursor,
    _marks,
    _member,
    _offset_page,
    _store,
    membership_node,
)  # fmt: skip
from .store import StoreError, gid, parse_gid

Node = dict[str, Any]


def _file_node(info: Any, artifact_pk: int, name: str, md5: str, size: int | None = None) -> Node:
    return {
        "id": gid("File", f"{artifact_pk}:{name}"),
        "name": name,
        "displayName": name.rsplit("/", 1)[-1],
        "directUrl": info.context["signed"]("GET", "blobs", md5),
        "url": None,
        "uploadUrl": None,
        "uploadHeaders": [],
        "uploadMultipartUrls": None,
        "storagePath": f"blobs/{md5}",
        "sizeBytes": size,
        "md5": md5,
        "digest": md5,
        "mimetype": None,
        "artifact": {"id": gid("Artifact", artifact_pk)},
    }


def _manifest_node(info: Any, artifact_pk: int) -> Node:
    row = contents.manifest(_store(info), artifact_pk)
    if row is None:
        raise StoreError(f"artifact {artifact_pk} has no manifest")
    signed = info.context["signed"]
    name = "wandb_manifest.json"
    return {
        "id": gid("ArtifactManifest", artifact_pk),
        "type": row["type"],
        "digest": row["digest"],
        "createdAt": row["created_at"],
        "file": {
            "id": gid("File", f"{artifact_pk}:{name}"),
            "name": name,
            "displayName": name,
            "directUrl": signed("GET", "manifests", str(artifact_pk)),
            "uploadUrl": signed("PUT", "manifests", str(artifact_pk)),
            "uploadHeaders": [],
        },
    }


def _mutation(input: dict[str, Any], **payload: Any) -> Node:
    return {**payload, "clientMutationId": input.get("clientMutationId")}


def _json_object(text: str | None, field: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = []
    if value is not None and not isinstance(value, dict):
        raise StoreError(f"{field} must be a JSON object")
    return value


# -- Mutations ---------------------------------------------------------------------------------------------


def m_create_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    collection = input.get("artifactCollectionName") or next(iter(input.get("artifactCollectionNames") or []), None)
    if not collection:
        raise StoreError("createArtifact needs artifactCollectionName")
    aliases = [
        a["alias"]
        for a in input.get("aliases") or []
        if a["artifactCollectionName"] == collection and a["alias"] != "latest"  # latest moves at commit
    ]
    metadata = _json_object(input.get("metadata"), "metadata")
    pk = _store(info).log_version(
        input["entityName"],
        input["projectName"],
        collection,
        type=input["artifactTypeName"],
        digest=input["digest"],
        aliases=aliases,
        metadata=metadata,
        description=input.get("description"),
        dedupe=input.get("enableDigestDeduplication") is not False,
    )
    return _mutation(input, artifact=_artifact_by_pk(info, pk))


def m_create_manifest(_: Any, info: Any, input: dict[str, Any]) -> Node:
    pk = parse_gid(input["artifactID"], "Artifact")
    contents.set_manifest(_store(info), pk, input["digest"], input.get("type") or "FULL")
    return _mutation(input, artifactManifest=_manifest_node(info, pk))


def m_update_manifest(_: Any, info: Any, input: dict[str, Any]) -> Node:
    pk = parse_gid(input["artifactManifestID"], "ArtifactManifest")
    row = contents.manifest(_store(info), pk)
    if row is None:
        raise StoreError(f"artifact manifest {input['artifactManifestID']} does not exist")
    contents.set_manifest(_store(info), pk, input.get("digest") or row["digest"], row["type"])
    return _mutation(input, artifactManifest=_manifest_node(info, pk))


def m_create_files(_: Any, info: Any, input: dict[str, Any]) -> Node:
    """An upload address for each file this server does not hold yet (none for one it does: the SDK
    then skips it), or one per part when the SDK asks for a multipart upload."""
    store, signed = _store(info), info.context["signed"]
    nodes = []
    for spec in input["artifactFiles"]:
        pk = parse_gid(spec["artifactID"], "Artifact")
        if _artifact_by_pk(info, pk) is None:
            raise StoreError(f"artifact {spec['artifactID']} does not exist")
        md5 = contents.hex_md5(spec["md5"], f"md5 of {spec['name']!r}")
        node = _file_node(info, pk, spec["name"], md5)
        if not contents.has_blob(store, md5):
            parts = spec.get("uploadPartsInput")
            if parts:
                upload = contents.start_upload(md5, parts)
                node["uploadMultipartUrls"] = {
                    "uploadID": upload,
                    "uploadUrlParts": [
                        {"partNumber": n, "uploadUrl": signed("PUT", "parts", upload, str(n))}
                        for n in sorted(int(p["partNumber"]) for p in parts)
                    ],
                }
            else:
                node["uploadUrl"] = signed("PUT", "blobs", md5)
        nodes.append(node)
    page = _connection(nodes, [_cursor([i + 1]) for i in range(len(nodes))], False, totalCount=len(nodes))
    return _mutation(input, files=page)


def m_complete_multipart(_: Any, info: Any, input: dict[str, Any]) -> Node:
    digest = contents.complete_upload(_store(info), input["uploadID"], input["completedParts"])
    return _mutation(input, digest=digest)


def m_commit_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    pk = parse_gid(input["artifactID"], "Artifact")
    contents.commit(_store(info), pk)
    return _mutation(input, artifact=_artifact_by_pk(info, pk))


def m_use_artifact(_: Any, info: Any, input: dict[str, Any]) -> Node:
    pk = parse_gid(input["artifactID"], "Artifact")
    contents.use(_store(info), input["entityName"], input["projectName"], input["runName"], pk, input.get("usedAs"))
    return _mutation(input, artifact=_artifact_by_pk(info, pk))


# -- reads for a download ------------------------------------------------------------------------------------


def artifact_current_manifest(art: Node, info: Any) -> Node | None:
    return _manifest_node(info, art["_pk"]) if contents.manifest(_store(info), art["_pk"]) else None


def _files(info: Any, artifact_pk: int, names: list[str] | None, after: str | None, first: int | None) -> Node:
    """The files the version's manifest lists, by name (``names``: only those), a page of them."""
    sql, args = "SELECT * FROM artifact_file WHERE artifact_id=?", list[Any]([artifact_pk])
    if names is not None:
        sql += f" AND name IN ({_marks(names)})"
        args += names
    nodes, cursors, more = _offset_page(
        _store(info), sql + " ORDER BY name", args, after, first,
        lambda r: _file_node(info, artifact_pk, r["name"], r["md5"], r["size"]),
    )  # fmt: skip
    return _connection(nodes, cursors, more)


def artifact_files(
    art: Node, info: Any, names: list[str] | None = None, after: str | None = None, first: int | None = None
) -> Node:
    return _files(info, art["_pk"], names, after, first)


def membership_files(
    member: Node, info: Any, names: list[str] | None = None, after: str | None = None, first: int | None = None
) -> Node:
    return _files(info, member["_artifact_pk"], names, after, first)


def collection_membership(coll: Node, info: Any, aliasName: str) -> Node | None:
    """``collection:alias`` or ``collection:vN`` inside one collection, as a download asks for it."""
    row = _member(_store(info), coll["_project_pk"], f"{coll['name']}:{aliasName}")
    return membership_node(row) if row else None


RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Mutation": {
        "createArtifact": m_create_artifact,
        "createArtifactManifest": m_create_manifest,
        "updateArtifactManifest": m_update_manifest,
        "createArtifactFiles": m_create_files,
        "completeMultipartUploadArtifact": m_complete_multipart,
        "commitArtifact": m_commit_artifact,
        "useArtifact": m_use_artifact,
    },
    "Artifact": {"currentManifest": artifact_current_manifest, "files": artifact_files},
    "ArtifactCollectionMembership": {"files": membership_files},
    "ArtifactSequence": {"artifactMembership": collection_membership},
    "ArtifactPortfolio": {"artifactMembership": collection_membership},
}
