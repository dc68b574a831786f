"""The executable schema of the local W&B stand-in: ``schema.graphql`` with the resolvers of the reads
and writes (``resolvers``) and of the artifact uploads and downloads (``artifact_writes``) attached."""

from __future__ import annotations

from importlib import resources

from graphql import GraphQLSchema, build_schema

from . import artifact_writes, resolvers


def build() -> GraphQLSchema:
    schema = build_schema(resources.files(__package__).joinpath("schema.graphql").read_text())
    for bound in (resolvers.RESOLVERS, artifact_writes.RESOLVERS):
        for type_name, fields in bound.items():
            gql_type = schema.get_type(type_name)
            for field_name, resolver in fields.items():
                gql_type.fields[field_name].resolve = resolver  # type: ignore[union-attr]
    return schema
