"""Search attributes that make executions filterable in Temporal visibility and the Web UI.

The dev stack registers them at server start (`--search-attribute Name=Keyword`); a production
cluster needs `temporal operator search-attribute create` once (see README).
"""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

APPLICATION = SearchAttributeKey.for_keyword("GennakerApplication")
PIPELINE = SearchAttributeKey.for_keyword("GennakerPipeline")
TRIGGER = SearchAttributeKey.for_keyword("GennakerTrigger")
STATUS = SearchAttributeKey.for_keyword("GennakerStatus")

ALL_KEYS = (APPLICATION, PIPELINE, TRIGGER, STATUS)

# GennakerStatus of a run that a newer one superseded while it waited (limitConcurrent): its state
# says CANCELED, Temporal's list says COMPLETED; the list should say what happened.
SUPERSEDED = "SUPERSEDED"


def initial_attributes(application: str, pipeline: str, trigger: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(APPLICATION, application),
            SearchAttributePair(PIPELINE, pipeline),
            SearchAttributePair(TRIGGER, trigger),
            SearchAttributePair(STATUS, "RUNNING"),
        ]
    )
