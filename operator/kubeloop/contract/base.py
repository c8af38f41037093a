"""The base of every contract document: snake_case in Python, camelCase in JSON, like the API.

Unknown keys are ignored rather than refused: an artifact written by a newer trainer must stay readable by
an older operator (and the other way round), and the documents are written by programs, not typed by users.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ContractModel(BaseModel):
    """A JSON document exchanged between the trainer, the server and the operator."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )
