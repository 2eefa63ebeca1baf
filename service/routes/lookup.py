"""`POST /v1/lookup`: the published translation of a sentence or a passage."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import RetrieverDep, StateDep, require_reader
from service.schemas import LookupRequest, LookupResponse

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(require_reader)])


@router.post("/lookup", response_model=LookupResponse)
async def lookup(body: LookupRequest, state: StateDep, retriever: RetrieverDep) -> LookupResponse:
    """The published translation of `text`: the text as found in its own language and the
    sentences aligned with it in the other version (method `alignment`), or, when the text is
    not in the archive, the closest sentence of a cross-lingual search (method `search`), with
    spans into both documents and a calibrated confidence. 400 when `lang` is the text's own
    language."""
    view = retriever.view()
    return await state.read(lambda: LookupResponse.of(view, body.text, body.lang))
