"""A logging filter that masks phones and e-mail addresses in every record it sees.

Standard library only, so the core can use it without Prefect; `tasks.privacy` names
Prefect's loggers and installs it there. The filter rewrites the record itself (message,
arguments and exception text), so every handler after it, console or Prefect API, gets
the masked form, and it always lets the record through: a log line is never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from oms.domain.masking import mask_text

_FORMATTER = logging.Formatter()


class PersonalDataMasked(logging.Filter):
    """Masks personal data in a record's message and traceback, in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set, so the traceback is masked for all of them.
            record.exc_text = mask_text(_FORMATTER.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def install_personal_data_mask(logger_names: Iterable[str]) -> None:
    """Put the filter on each named logger ('' is the root) and on each of its handlers.

    On the logger it masks what is logged there; on the handlers it also masks what
    child loggers propagate to them. Installing twice changes nothing.
    """
    for name in logger_names:
        logger = logging.getLogger(name or None)
        _add_once(logger)
        for handler in logger.handlers:
            _add_once(handler)


def _add_once(target: logging.Filterer) -> None:
    if not any(isinstance(existing, PersonalDataMasked) for existing in target.filters):
        target.addFilter(PersonalDataMasked())
