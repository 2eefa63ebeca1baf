"""Errors a user can act on. Each message is one line saying what is wrong and what to do."""


class QiaoError(Exception):
    """Base class: the message is shown to the user as is."""


class ModelError(QiaoError):
    """The embedding model is missing, corrupt or unusable."""


class DocumentError(QiaoError):
    """A document could not be read or is invalid; other documents are unaffected."""


class IndexMismatch(QiaoError):
    """The data directory was built with another model or settings."""


class DataDirError(QiaoError):
    """The data directory cannot be read or written, or is corrupt."""


class EmptyInput(QiaoError):
    """An operation got nothing to work on (e.g. an empty list of texts)."""


class LlmError(QiaoError):
    """The LLM could not produce an answer; the message is one line for the user."""


class LlmTimeout(LlmError):
    """The LLM did not answer within the timeout."""


class LlmUpstreamError(LlmError):
    """The LLM could not be reached, answered with an error, or sent something unusable."""


class BackendUnavailable(QiaoError):
    """The index backend (a Qdrant server) is down, unreachable or busy: retry later."""
